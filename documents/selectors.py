"""Read-side queries for knowledge bases and documents, with the access check built in.

These are the one access check per kind of object: views, the API, consumers, exports and tasks
all go through them. Roles: the owner (everything), an editor (documents and settings), a viewer
(search and chat). Having no role looks exactly like the object not existing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import (
    Case,
    CharField,
    Count,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from core.errors import NotFound, PermissionDenied
from documents.models import Chunk, Document, KnowledgeBase, KnowledgeBaseShare, ShareRole

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser

OWNER = "owner"


def _readable_filter(user: User) -> Q:
    """Own, or shared with ``user`` (a subquery, not a join: no duplicate rows)."""
    user_id = int(user.pk or 0)  # callers pass signed-in users only
    shared = KnowledgeBaseShare.objects.filter(user_id=user_id).values("knowledge_base")
    return Q(owner_id=user_id) | Q(pk__in=shared)


def knowledge_base_list_for_user(*, user: User) -> QuerySet[KnowledgeBase]:
    """The knowledge bases ``user`` may read (own and shared with them), each annotated with its
    current document count and ``user_role`` (``owner``, ``editor`` or ``viewer``).

    Staff have no implicit access here: they manage others' knowledge bases in the admin."""
    if not user.is_authenticated:
        return KnowledgeBase.objects.none()
    documents = (
        Document.objects.filter(knowledge_base=OuterRef("pk"), is_current=True)
        .order_by()
        .values("knowledge_base")
        .annotate(n=Count("pk"))
        .values("n")
    )
    shared_role = KnowledgeBaseShare.objects.filter(
        knowledge_base=OuterRef("pk"), user_id=user.pk
    ).values("role")[:1]
    readable = KnowledgeBase.objects.filter(_readable_filter(user))
    return readable.select_related("owner").annotate(
        document_count=Coalesce(Subquery(documents), 0),
        user_role=Case(
            When(owner_id=user.pk, then=Value(OWNER)),
            default=Subquery(shared_role),
            output_field=CharField(),
        ),
    )


def knowledge_base_get_for_user(
    *, kb_id: int, user: User, edit: bool = False, manage: bool = False
) -> KnowledgeBase:
    """The knowledge base ``kb_id`` if ``user`` may read it; with ``edit``, change its documents
    and settings (owner or editor); with ``manage``, delete or share it (owner only).

    Raises :class:`NotFound` when it is missing or ``user`` has no access at all, so that ids do
    not leak, and :class:`PermissionDenied` when ``user`` can see it but not do this.
    """
    kb = knowledge_base_list_for_user(user=user).filter(pk=kb_id).first()
    if kb is None:
        raise NotFound(_("Knowledge base not found."))
    _require(kb.user_role, edit=edit, manage=manage)  # type: ignore[attr-defined]
    return kb


def _require(role: str, *, edit: bool, manage: bool) -> None:
    if manage and role != OWNER:
        raise PermissionDenied(
            _("Only the owner can delete this knowledge base or change its sharing.")
        )
    if edit and role not in (OWNER, ShareRole.EDITOR):
        raise PermissionDenied(
            _("You can search and chat with this knowledge base but not change it.")
        )


def knowledge_base_role(*, kb: KnowledgeBase, user: User) -> str | None:
    """``user``'s role on ``kb``: ``owner``, ``editor``, ``viewer`` or ``None``."""
    if not user.is_authenticated:
        return None
    if kb.owner_id == user.pk:
        return OWNER
    share = KnowledgeBaseShare.objects.filter(knowledge_base=kb, user_id=user.pk).first()
    return share.role if share else None


def knowledge_base_ids_readable(
    *, user: User, knowledge_bases: QuerySet[KnowledgeBase]
) -> list[int]:
    """The ids of ``knowledge_bases`` that ``user`` may still read, in id order, in one query
    (a conversation keeps its knowledge bases when sharing is withdrawn; retrieval must then
    skip them)."""
    if not user.is_authenticated:
        return []
    return list(
        knowledge_bases.filter(_readable_filter(user)).order_by("pk").values_list("pk", flat=True)
    )


def knowledge_base_list_readable(
    *, user: User, knowledge_bases: QuerySet[KnowledgeBase]
) -> list[KnowledgeBase]:
    """The rows of ``knowledge_bases`` that ``user`` may still read (own, or shared with them),
    in id order: :func:`knowledge_base_ids_readable` for a caller that goes on to search them.
    One query when ``user`` owns them all (an answer's usual case: the filter of
    :func:`_readable_filter` costs more to build than this), a second for the shares."""
    if not user.is_authenticated:
        return []
    rows = list(knowledge_bases.order_by("pk"))
    others = [kb.pk for kb in rows if kb.owner_id != user.pk]
    if not others:
        return rows
    shared = set(
        KnowledgeBaseShare.objects.filter(user_id=user.pk, knowledge_base_id__in=others)
        .order_by()
        .values_list("knowledge_base_id", flat=True)
    )
    return [kb for kb in rows if kb.owner_id == user.pk or kb.pk in shared]


def knowledge_base_share_list(*, kb: KnowledgeBase) -> QuerySet[KnowledgeBaseShare]:
    """Who ``kb`` is shared with, by user name."""
    return (
        KnowledgeBaseShare.objects.filter(knowledge_base=kb)
        .select_related("user")
        .order_by("user__username", "pk")
    )


def document_list_for_kb(*, kb: KnowledgeBase, status: str = "") -> QuerySet[Document]:
    """The current documents of ``kb`` (and new versions being built), newest first."""
    documents = Document.objects.filter(knowledge_base=kb).filter(
        Q(is_current=True) | Q(replaces__isnull=False)
    )
    if status:
        documents = documents.filter(status=status)
    return documents.order_by("-created_at", "-id")


def document_get_for_user(*, doc_id: int, user: User, edit: bool = False) -> Document:
    """The document ``doc_id`` if ``user`` may read its knowledge base (``edit``: change it, as
    its owner or an editor). Raises :class:`NotFound` when there is no access at all and
    :class:`PermissionDenied` when a viewer asks to change it."""
    if not user.is_authenticated:
        raise NotFound(_("Document not found."))
    document = (
        Document.objects.select_related("knowledge_base")
        .filter(Q(knowledge_base__owner_id=user.pk) | Q(knowledge_base__shares__user_id=user.pk))
        .filter(pk=doc_id)
        .first()
    )
    if document is None:
        raise NotFound(_("Document not found."))
    if edit:
        role = knowledge_base_role(kb=document.knowledge_base, user=user)
        _require(role or "", edit=True, manage=False)
    return document


def chunk_list_for_document(*, document: Document) -> QuerySet[Chunk]:
    return Chunk.objects.filter(document=document).order_by("ordinal").defer("vector")
