"""Every real file of shared/testdata/docs through the product's own path: upload (type
detection), the ingestion task, chunk rows, vectors and the search index. Each ends indexed with
sensible, searchable chunks, or failed (or refused at upload) with the specific reason that
``test_real_files.EXPECTED`` gives for it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.errors import InvalidInput
from documents import retrieval as search_services
from documents import services
from documents.models import Chunk, DocumentStatus
from documents.tests.test_real_files import EXPECTED, REASONS, Failed

from .conftest import TESTDATA_DOCS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_encoder")]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_file_is_indexed_or_fails_with_its_reason(alice: Any, name: str) -> None:
    path = TESTDATA_DOCS / name
    expected = EXPECTED[name]
    kb = services.knowledge_base_create(owner=alice, name="Real files")
    try:
        result = services.document_upload(
            knowledge_base=kb, user=alice, name=path.name, chunks=[path.read_bytes()]
        )
    except InvalidInput as exc:  # refused at upload: an empty file, a foreign format
        assert isinstance(expected, Failed), f"{name} was refused: {exc.message}"
        assert REASONS[expected.reason] in exc.message.lower() or "empty" in exc.message.lower()
        return
    document = result.document
    document.refresh_from_db()
    if isinstance(expected, Failed):
        assert document.status == DocumentStatus.FAILED, name
        assert REASONS[expected.reason] in document.failure_reason, document.failure_reason
        assert not Chunk.objects.filter(document=document).exists()
        return
    assert document.status == DocumentStatus.INDEXED, document.failure_reason
    chunks = list(Chunk.objects.filter(document=document))
    assert chunks and document.chunk_count == len(chunks)
    assert all(c.text.strip() and c.vector for c in chunks)
    if document.file_type == "pdf":
        assert all(c.page_start and c.page_start <= (document.page_count or 0) for c in chunks)
    needle = expected.needles[0]
    assert any(needle in c.text for c in chunks), needle
    if re.search(r"[A-Za-zА-Яа-яЁё]{3,}", needle):  # keyword search reads Latin and Cyrillic words
        found = search_services.search(knowledge_bases=[kb], query=needle, mode="keyword", top_k=5)
        assert any(hit.document_id == document.pk for hit in found.hits), needle
