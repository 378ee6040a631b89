"""Plain ``make_*`` helpers for the page tests: rows straight into the database."""

from __future__ import annotations

from typing import Any

from chat.models import Conversation
from documents.models import Chunk, Document, KnowledgeBase


def make_kb(owner: Any, name: str = "Handbook", **fields: Any) -> KnowledgeBase:
    return KnowledgeBase.objects.create(owner=owner, name=name, **fields)


def make_document(kb: KnowledgeBase, title: str = "guide", **fields: Any) -> Document:
    values: dict[str, Any] = {
        "original_name": f"{title}.pdf",
        "file": f"kb/{kb.pk}/{title}.pdf",
        "file_type": "pdf",
        "size": 2048,
        "sha256": title.ljust(64, "0"),
        "status": "indexed",
        "progress": 100,
        "page_count": 2,
        "chunk_count": 1,
        **fields,
    }
    return Document.objects.create(knowledge_base=kb, title=title, **values)


def make_chunk(document: Document, text: str, ordinal: int = 0, page: int = 1) -> Chunk:
    return Chunk.objects.create(
        document=document,
        knowledge_base=document.knowledge_base,
        ordinal=ordinal,
        text=text,
        page_start=page,
        page_end=page,
        text_sha256=str(ordinal).ljust(64, "0"),
        token_count=len(text.split()),
    )


def make_conversation(owner: Any, title: str = "About holidays", **fields: Any) -> Conversation:
    return Conversation.objects.create(owner=owner, title=title, **fields)
