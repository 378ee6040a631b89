"""Plain ``make_*`` helpers for knowledge bases, documents and chunks."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from documents.models import Chunk, Document, DocumentStatus, FileType, KnowledgeBase


def make_kb(owner: Any, name: str = "Handbook", **fields: Any) -> KnowledgeBase:
    return KnowledgeBase.objects.create(owner=owner, name=name, **fields)


def make_document(
    kb: KnowledgeBase,
    texts: Sequence[str],
    *,
    title: str = "doc",
    file_type: str = FileType.TXT,
    pages: Sequence[int] | None = None,
) -> tuple[Document, list[Chunk]]:
    """A document of ``kb`` with one saved (not yet indexed) chunk per text."""
    body = "\n\n".join(texts)
    document = Document.objects.create(
        knowledge_base=kb,
        title=title,
        original_name=f"{title}.{file_type}",
        file="",
        file_type=file_type,
        size=len(body),
        sha256=hashlib.sha256(body.encode()).hexdigest(),
        status=DocumentStatus.INDEXED,
    )
    chunks = [
        Chunk(
            document=document,
            knowledge_base=kb,
            ordinal=i,
            text=text,
            page_start=pages[i] if pages else None,
            page_end=pages[i] if pages else None,
            text_sha256=hashlib.sha256(text.encode()).hexdigest(),
        )
        for i, text in enumerate(texts)
    ]
    Chunk.objects.bulk_create(chunks)
    return document, chunks
