"""Read-side queries for knowledge bases and documents, with the access check built in.

These are the one access check per kind of object: views, the API, consumers, exports and tasks
all go through them. Sharing (viewer/editor) extends them, not their callers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count, Q, QuerySet

from documents.models import Chunk, Document, KnowledgeBase
from raggen.errors import NotFound

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser


def knowledge_base_list_for_user(user: User) -> QuerySet[KnowledgeBase]:
    """The knowledge bases ``user`` may read, with their current document counts."""
    if not user.is_authenticated:
        return KnowledgeBase.objects.none()
    return KnowledgeBase.objects.filter(owner_id=user.pk).annotate(
        document_count=Count("documents", filter=Q(documents__is_current=True))
    )


def knowledge_base_get_for_user(kb_id: int, user: User, *, edit: bool = False) -> KnowledgeBase:
    """The knowledge base ``kb_id`` if ``user`` may read it (``edit``: change it).

    Raises :class:`NotFound` otherwise, also when it exists but belongs to someone else, so that
    ids do not leak.
    """
    kb = knowledge_base_list_for_user(user).filter(pk=kb_id).first()
    if kb is None:
        raise NotFound("Knowledge base not found.")
    return kb


def document_list_for_kb(kb: KnowledgeBase, *, status: str = "") -> QuerySet[Document]:
    """The current documents of ``kb`` (and new versions being built), newest first."""
    documents = Document.objects.filter(knowledge_base=kb).filter(
        Q(is_current=True) | Q(replaces__isnull=False)
    )
    if status:
        documents = documents.filter(status=status)
    return documents.order_by("-created_at", "-id")


def document_get_for_user(doc_id: int, user: User, *, edit: bool = False) -> Document:
    """The document ``doc_id`` if ``user`` may read its knowledge base. Raises :class:`NotFound`."""
    if not user.is_authenticated:
        raise NotFound("Document not found.")
    document = (
        Document.objects.select_related("knowledge_base")
        .filter(pk=doc_id, knowledge_base__owner_id=user.pk)
        .first()
    )
    if document is None:
        raise NotFound("Document not found.")
    return document


def chunk_list_for_document(document: Document) -> QuerySet[Chunk]:
    return Chunk.objects.filter(document=document).order_by("ordinal").defer("vector")
