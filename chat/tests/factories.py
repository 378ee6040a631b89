"""Plain ``make_*`` helpers: indexed knowledge bases and conversations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chat.models import Conversation
from documents import retrieval as embeddings
from documents.models import Chunk, Document, DocumentStatus, FileType, KnowledgeBase
from documents.retrieval.tests.factories import make_document, make_kb

HANDBOOK = [
    "Invoices are paid within 30 days of receipt by bank transfer.",
    "The office is open from 9 to 18 on working days.",
    "Vacation requests are approved by the team lead two weeks in advance.",
]
CONTRACT = [
    "The supplier delivers the equipment within 14 days after the advance payment.",
    "A penalty of 0.1 percent per day applies to late deliveries.",
]


def index_document(
    kb: KnowledgeBase,
    texts: Sequence[str],
    *,
    title: str,
    file_type: str = FileType.TXT,
    pages: Sequence[int] | None = None,
) -> tuple[Document, list[Chunk]]:
    document, chunks = make_document(kb, texts, title=title, file_type=file_type, pages=pages)
    offset = 0
    for chunk in chunks:
        chunk.char_start, chunk.char_end = offset, offset + len(chunk.text)
        offset = chunk.char_end + 2
    Chunk.objects.bulk_update(chunks, ["char_start", "char_end"])
    embeddings.index_chunks(knowledge_base=kb, chunks=chunks)
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.INDEXED)
    return document, chunks


def make_indexed_kb(owner: Any, name: str = "Company") -> KnowledgeBase:
    """A knowledge base with a paged PDF handbook and an unpaged text contract."""
    kb = make_kb(owner, name)
    index_document(kb, HANDBOOK, title="Handbook", file_type=FileType.PDF, pages=[1, 2, 3])
    index_document(kb, CONTRACT, title="Contract")
    return kb


def make_conversation(owner: Any, *kbs: KnowledgeBase, **fields: Any) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, **fields)
    conversation.knowledge_bases.set(kbs)
    return conversation
