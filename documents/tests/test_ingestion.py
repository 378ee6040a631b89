"""Ingestion end to end through the services, with tasks run eagerly and the fake encoder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from core.errors import InvalidInput, PayloadTooLarge
from documents import ingestion, services, tasks
from documents import retrieval as search_services
from documents.models import Chunk, Document, DocumentStatus, KnowledgeBase
from documents.tests.helpers import DOCS, upload_bytes, upload_path

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_encoder")]


@pytest.fixture
def kb(alice: Any) -> KnowledgeBase:
    return services.knowledge_base_create(owner=alice, name="Handbook")


def search_texts(kb: KnowledgeBase, query: str, **kwargs: Any) -> list[str]:
    result = search_services.search(knowledge_bases=[kb], query=query, mode="keyword", **kwargs)
    return [hit.text for hit in result.hits]


def test_a_russian_pdf_is_indexed_with_page_numbers_and_found_by_a_stemmed_query(kb, alice):
    document = upload_path(kb, DOCS / "pdf" / "ru" / "synopsis.pdf", alice)
    assert document.status == DocumentStatus.INDEXED, document.failure_reason
    assert document.file_type == "pdf"
    assert document.progress == 100
    assert document.page_count and document.page_count > 1
    chunks = list(Chunk.objects.filter(document=document))
    assert len(chunks) == document.chunk_count > 0
    assert all(c.page_start and 1 <= c.page_start <= document.page_count for c in chunks)
    assert all(c.vector and len(bytes(c.vector)) == 384 * 4 for c in chunks)
    assert any("диссертац" in c.text.lower() for c in chunks)
    hits = search_services.search(knowledge_bases=[kb], query="диссертации", mode="keyword").hits
    assert hits and hits[0].document_id == document.pk and hits[0].page_start


def test_upload_detects_the_type_from_content_not_the_name(kb):
    pdf_bytes = (DOCS / "pdf" / "sample-files" / "002-trivial-libre-office-writer.pdf").read_bytes()
    document = upload_bytes(kb, "notes.txt", pdf_bytes)
    assert document.file_type == "pdf"
    assert document.status == DocumentStatus.INDEXED


def test_a_password_protected_pdf_fails_with_a_reason_the_user_can_act_on(kb):
    document = upload_path(kb, DOCS / "pdf" / "sample-files" / "libreoffice-writer-password.pdf")
    assert document.status == DocumentStatus.FAILED
    assert "password" in document.failure_reason.lower()
    assert not Chunk.objects.filter(document=document).exists()


def test_an_image_is_refused_at_upload_with_the_supported_types():
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    with pytest.raises(InvalidInput, match="PNG image"):
        services.document_upload(
            knowledge_base=KnowledgeBase.objects.create(owner_id=_user().pk, name="x"),
            user=None,
            name="photo.png",
            chunks=[png],
        )


def _user() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("carol", "carol@example.com", "pw-123456789")


def test_an_empty_file_is_refused(kb):
    with pytest.raises(InvalidInput, match="empty"):
        services.document_upload(knowledge_base=kb, user=None, name="e.txt", chunks=[b""])


def test_a_file_over_the_size_limit_is_refused_and_leaves_nothing(kb, settings):
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    with pytest.raises(PayloadTooLarge, match="larger than the 1 MB limit"):
        services.document_upload(
            knowledge_base=kb, user=None, name="big.txt", chunks=[b"a" * 700_000] * 2
        )
    assert not Document.objects.exists()


def test_a_duplicate_upload_names_the_existing_document(kb):
    first = upload_bytes(kb, "a.txt", "Договор поставки.\n\nСрок действия один год.".encode())
    again = services.document_upload(
        knowledge_base=kb,
        user=None,
        name="copy.txt",
        chunks=["Договор поставки.\n\nСрок действия один год.".encode()],
    )
    assert again.duplicate and again.document.pk == first.pk
    assert Document.objects.count() == 1


def test_file_names_are_sanitised(kb):
    document = upload_bytes(kb, "../../etc/pass wd<>.txt", b"Some plain text for the index.")
    assert "/" not in document.original_name and ".." not in document.original_name
    assert "<" not in document.original_name and document.original_name.endswith(".txt")
    assert document.file.name.startswith(f"kb/{kb.pk}/") and ".." not in document.file.name


def test_ingesting_twice_gives_the_same_chunks(kb):
    document = upload_bytes(kb, "a.txt", ("Paragraph about contracts. " * 30 + "\n\n").encode() * 5)
    before = list(Chunk.objects.filter(document=document).values_list("ordinal", "text"))
    assert ingestion.document_ingest(document.pk) == "skipped"
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.QUEUED)
    assert ingestion.document_ingest(document.pk) == DocumentStatus.INDEXED
    after = list(Chunk.objects.filter(document=document).values_list("ordinal", "text"))
    assert before == after


def test_chunks_of_a_document_being_indexed_are_not_searchable(kb):
    document = upload_bytes(kb, "a.txt", b"Nothing to see here about zebras.")
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.EMBEDDING)
    assert search_texts(kb, "zebras") == []
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.INDEXED)
    assert search_texts(kb, "zebras") == ["Nothing to see here about zebras."]


def test_delete_removes_file_chunks_and_search_entries(kb):
    document = upload_bytes(kb, "a.txt", b"The warranty lasts twelve months.")
    stored = document.file.path
    assert search_texts(kb, "warranty")
    services.document_delete(document=document)
    assert search_texts(kb, "warranty") == []
    assert not Chunk.objects.exists()
    assert not Path(stored).exists()


def test_a_new_version_stays_invisible_until_indexed_then_swaps_atomically(kb, monkeypatch):
    old = upload_bytes(kb, "policy.txt", b"Vacation policy: twenty days a year.")
    seen_before_swap: list[list[str]] = []
    real_finish = ingestion._finish

    def finish_and_look(attempt: Any, chunk_count: int, page_count: int | None) -> None:
        # The new version's chunks are embedded and in the index, but not yet swapped in.
        assert Chunk.objects.filter(document=attempt.document).exists()
        seen_before_swap.append(search_texts(kb, "vacation"))
        real_finish(attempt, chunk_count, page_count)

    monkeypatch.setattr(ingestion, "_finish", finish_and_look)
    result = services.document_upload(
        knowledge_base=kb,
        user=None,
        name="policy-v2.txt",
        chunks=[b"Vacation policy: twenty-five days a year."],
        replaces=old,
    )
    new = result.document
    new.refresh_from_db()
    assert seen_before_swap == [["Vacation policy: twenty days a year."]]
    assert new.status == DocumentStatus.INDEXED and new.is_current and new.version == 2
    assert not Document.objects.filter(pk=old.pk).exists()
    assert search_texts(kb, "vacation") == ["Vacation policy: twenty-five days a year."]


def test_changing_chunk_settings_reindexes_without_a_gap(kb):
    text = "\n\n".join(
        f"Section {i}: the supplier delivers goods within {i} days." for i in range(40)
    )
    document = upload_bytes(kb, "terms.txt", text.encode())
    chunks_before = document.chunk_count
    reindexing = services.knowledge_base_update(kb=kb, max_chunk_tokens=32, overlap_tokens=4)
    assert reindexing
    current = Document.objects.get(knowledge_base=kb, is_current=True)
    assert current.pk != document.pk and current.status == DocumentStatus.INDEXED
    assert current.chunk_count > chunks_before
    assert Chunk.objects.filter(knowledge_base=kb).count() == current.chunk_count
    assert search_texts(kb, "supplier", top_k=100)


def test_an_abandoned_document_is_swept_and_indexed_without_duplicates(kb, settings):
    document = upload_bytes(kb, "a.txt", b"First paragraph.\n\nSecond paragraph about audits.")
    good = list(Chunk.objects.filter(document=document).values_list("ordinal", "text"))
    # A worker died mid-way: status in progress, an old heartbeat, and a leftover partial chunk.
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.EMBEDDING,
        heartbeat_at=timezone.now() - timedelta(hours=1),
        attempts=1,
    )
    Chunk.objects.filter(document=document, ordinal__gt=0).delete()
    assert tasks.sweep_stale() == [document.pk]
    document.refresh_from_db()
    assert document.status == DocumentStatus.INDEXED
    assert list(Chunk.objects.filter(document=document).values_list("ordinal", "text")) == good


def test_a_document_interrupted_too_often_ends_failed_with_a_reason(kb, settings):
    document = upload_bytes(kb, "a.txt", b"Some text.")
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.EXTRACTING,
        heartbeat_at=timezone.now() - timedelta(hours=1),
        attempts=settings.INGEST_MAX_ATTEMPTS,
    )
    assert tasks.sweep_stale() == []
    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED
    assert "interrupted repeatedly" in document.failure_reason
    assert not Chunk.objects.filter(document=document).exists()


def test_a_fresh_in_progress_document_is_left_to_its_worker(kb):
    document = upload_bytes(kb, "a.txt", b"Some text.")
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.EMBEDDING, heartbeat_at=timezone.now()
    )
    assert ingestion.document_ingest(document.pk) == "skipped"
    assert tasks.sweep_stale() == []


def test_an_unexpected_error_marks_the_document_failed_and_does_not_escape(kb, monkeypatch):
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(ingestion, "_store", explode)
    document = upload_bytes(kb, "a.txt", b"Some text.")
    assert document.status == DocumentStatus.FAILED
    assert "unexpected error" in document.failure_reason


def test_progress_events_reach_the_knowledge_base_group(kb):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from documents.progress import group_name

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(kb.pk), channel)
    document = upload_bytes(kb, "a.txt", b"Progress is streamed to the browser.")
    events = []
    while True:
        try:
            events.append(async_to_sync(_receive)(layer, channel))
        except TimeoutError:
            break
    statuses = [
        e["payload"]["status"] for e in events if e["payload"]["document_id"] == document.pk
    ]
    assert statuses[0] == "queued" and statuses[-1] == "indexed"
    assert "extracting" in statuses


async def _receive(layer: Any, channel: str) -> Any:
    import asyncio

    return await asyncio.wait_for(layer.receive(channel), timeout=0.2)


def test_chunk_settings_the_chunker_cannot_use_are_refused_by_service_and_database(alice):
    from django.core.exceptions import ValidationError

    with pytest.raises(InvalidInput, match="at most half"):
        services.knowledge_base_create(
            owner=alice, name="Bad", max_chunk_tokens=200, overlap_tokens=150
        )
    with pytest.raises(ValidationError, match="at most half"):
        KnowledgeBase(owner=alice, name="Bad", max_chunk_tokens=100, overlap_tokens=60).full_clean()


@pytest.mark.parametrize("heading_context", [True, False])
def test_heading_context_decides_whether_the_heading_path_shapes_the_vector(
    alice, fake_encoder, heading_context
):
    import numpy as np

    kb = services.knowledge_base_create(
        owner=alice,
        name=f"KB {heading_context}",
        heading_context=heading_context,
        max_chunk_tokens=16,
        overlap_tokens=0,
    )
    first = "Invoices are paid within thirty days of receipt by the buyer."
    second = "Penalties of one percent apply for each week of delay after that."
    upload_bytes(kb, "terms.md", f"# Payment terms\n\n{first}\n\n{second}".encode())
    chunk = Chunk.objects.get(knowledge_base=kb, text=second)
    assert chunk.heading_path == "Payment terms"
    assert chunk.vector is not None
    stored = np.frombuffer(bytes(chunk.vector), dtype=np.float32)
    embedded = f"Payment terms\n{second}" if heading_context else second
    assert np.allclose(stored, fake_encoder.encode([embedded])[0])


def test_a_transient_database_error_is_retried_and_then_indexes(kb, monkeypatch):
    from django.db import OperationalError

    calls = {"n": 0}
    real_run = ingestion._run

    def flaky_run(attempt: Any) -> tuple[int, int | None]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("database is locked")
        return real_run(attempt)

    monkeypatch.setattr(ingestion, "_run", flaky_run)
    document = upload_bytes(kb, "a.txt", b"Retried after a busy database.")
    # The Celery task retried (autoretry with backoff); eagerly, the retry runs at once.
    assert calls["n"] == 2
    assert document.status == DocumentStatus.INDEXED
    assert document.attempts == 2
