"""Read-side queries of the chat, with the access check built in: a user sees only their own
conversations (``NotFound`` otherwise, never 403, so ids do not leak), and global plus their
own prompt templates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Value
from django.utils.translation import gettext as _

from chat.casefold import Casefold
from chat.models import Citation, Conversation, Message, PromptTemplate
from core.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser


def conversation_list_for_user(*, user: User, query: str = "") -> QuerySet[Conversation]:
    """``user``'s conversations, newest activity first, with their message counts and knowledge
    base ids prefetched. ``query`` keeps those whose title or any message contains it, ignoring
    case in any script (:class:`~chat.casefold.Casefold`: «договор» finds «Договор»)."""
    if not user.is_authenticated:
        return Conversation.objects.none()
    conversations = Conversation.objects.filter(owner_id=user.pk)
    if query.strip():
        needle = Casefold(Value(query.strip()))
        matching = Message.objects.alias(folded=Casefold("content")).filter(
            conversation_id=OuterRef("pk"), folded__contains=needle
        )
        conversations = conversations.alias(folded_title=Casefold("title")).filter(
            Q(folded_title__contains=needle) | Exists(matching)
        )
    return (
        conversations.annotate(message_count=Count("messages"))
        .prefetch_related("knowledge_bases", "documents")
        .order_by("-updated_at", "-id")
    )


def conversation_get_for_user(
    *, conversation_id: int, user: User, prefetch: bool = True
) -> Conversation:
    """The conversation ``conversation_id`` if it belongs to ``user``, with its knowledge bases
    and documents prefetched unless ``prefetch`` is false. Raises :class:`NotFound` otherwise,
    also when it belongs to someone else."""
    conversations = _owned(conversation_id, user)
    if prefetch:
        conversations = conversations.prefetch_related("knowledge_bases", "documents")
    return _first(conversations)


def conversation_document_ids(*, conversation_id: int) -> list[int]:
    """The documents the conversation's answers are restricted to (none: every document of its
    knowledge bases), read from the link table alone. The caller has checked access."""
    links = Conversation.documents.through.objects.filter(conversation_id=conversation_id)
    return list(links.order_by().values_list("document_id", flat=True))


def _owned(conversation_id: int, user: User) -> QuerySet[Conversation]:
    if not user.is_authenticated:
        raise NotFound(_("Conversation not found."))
    return Conversation.objects.filter(pk=conversation_id, owner_id=user.pk)


def _first(conversations: QuerySet[Conversation]) -> Conversation:
    # One row by its key: no ordering to compile (first() would add the model's).
    found = list(conversations.order_by()[:1])
    if not found:
        raise NotFound(_("Conversation not found."))
    return found[0]


def message_list_for_conversation(*, conversation: Conversation) -> QuerySet[Message]:
    """The messages of ``conversation``, oldest first, with their citations prefetched."""
    return (
        Message.objects.filter(conversation=conversation)
        .prefetch_related(Prefetch("citations", queryset=Citation.objects.order_by("number")))
        .order_by("created_at", "id")
    )


def message_get_for_user(*, message_id: int, user: User) -> Message:
    """A message of one of ``user``'s conversations. Raises :class:`NotFound`."""
    message = (
        Message.objects.filter(pk=message_id, conversation__owner_id=user.pk)
        .prefetch_related(Prefetch("citations", queryset=Citation.objects.order_by("number")))
        .first()
        if user.is_authenticated
        else None
    )
    if message is None:
        raise NotFound(_("Message not found."))
    return message


def prompt_template_list_for_user(*, user: User) -> QuerySet[PromptTemplate]:
    """The global templates and ``user``'s own, by name."""
    if not user.is_authenticated:
        return PromptTemplate.objects.none()
    return PromptTemplate.objects.filter(Q(owner__isnull=True) | Q(owner_id=user.pk)).order_by(
        "name", "id"
    )


def prompt_template_get_for_user(
    *, template_id: int, user: User, edit: bool = False
) -> PromptTemplate:
    """A template ``user`` may use (global or own). Raises :class:`NotFound` for another user's
    or a missing one, and :class:`PermissionDenied` when ``edit`` asks to change a global one
    (only the admin does that)."""
    template = prompt_template_list_for_user(user=user).filter(pk=template_id).first()
    if template is None:
        raise NotFound(_("Prompt template not found."))
    if edit and template.owner_id is None:
        raise PermissionDenied(_("Global templates are changed in the admin."))
    return template
