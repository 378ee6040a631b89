"""A turn of the conversation before its answer streams: the checks, the history and the
retrieval in one round trip to the database thread (:func:`_turn_prepare_and_retrieve`), and the
question and the answer's row saved together (:func:`_turn_record`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from chat import selectors
from chat.models import (
    Conversation,
    Message,
    MessageStatus,
    Role,
)
from chat.pipeline import (
    AnswerRequest,
    GenerationParams,
    with_passages,
)
from chat.services._conversations import conversation_update, title_from_question
from core.errors import Conflict, InvalidInput, NotFound
from documents.models import KnowledgeBase
from documents.selectors import knowledge_base_list_readable
from providers.base import ChatMessage
from providers.registry import default_provider_name
from usage.models import UsageRecord
from usage.quotas import quota_release, quota_reserve

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser


logger = logging.getLogger(__name__)

INTERRUPTED_REASON = gettext_noop("The server stopped while writing this answer.")


@dataclass(frozen=True)
class _Turn:
    """A question checked and its answer's request built, nothing written yet (a regenerated
    answer's question is already saved: ``question_id``)."""

    conversation_id: int
    user_id: int
    request: AnswerRequest
    question_id: int | None = None
    title: str = ""  # the conversation's title to set, when it has none
    reservation_id: int | None = None  # the quota's reservation (a usage record), if any


@dataclass(frozen=True)
class _Saved:
    user_message_id: int
    message_id: int


# A message as the checks and the history read it: pk, role, content, status, updated_at.
_Row = tuple[int, str, str, str, datetime]


def _messages(conversation: Conversation) -> list[_Row]:
    """The conversation's messages, oldest first: one query read by the stale check and by
    the history."""
    rows = Message.objects.filter(conversation_id=conversation.pk).order_by("created_at", "id")
    return list(rows.values_list("pk", "role", "content", "status", "updated_at"))


def _history(messages: list[_Row], before_id: int | None) -> tuple[ChatMessage, ...]:
    """``messages`` (see :func:`_messages`) before ``before_id`` (None: all) as the model's
    history: no failed answer, none left streaming, no empty message."""
    unfinished = (MessageStatus.FAILED, MessageStatus.STREAMING)
    return tuple(
        ChatMessage("user" if role == Role.USER else "assistant", content)
        for pk, role, content, status, _updated in messages
        if content
        and (before_id is None or pk < before_id)
        and not (role == Role.ASSISTANT and status in unfinished)
    )


def _fail_stale_answers(conversation: Conversation, messages: list[_Row]) -> None:
    """Mark answers left ``streaming`` by a process that died as failed (their quota
    reservations are given back); raises ``Conflict`` when one may still be streaming elsewhere.
    ``messages``: the conversation's (see :func:`_messages`); no query when none streams."""
    rows = [
        (pk, updated)
        for pk, _role, _content, status, updated in messages
        if status == MessageStatus.STREAMING
    ]
    if not rows:
        return
    stale_before = timezone.now() - timedelta(seconds=settings.LLM_READ_TIMEOUT + 30)
    if any(updated_at >= stale_before for _pk, updated_at in rows):
        raise Conflict(_("An answer is still being written in this conversation; stop it first."))
    stale = [pk for pk, _updated in rows]
    streaming = Message.objects.filter(conversation=conversation, status=MessageStatus.STREAMING)
    with transaction.atomic():
        streaming.filter(pk__in=stale).update(status=MessageStatus.FAILED, error=INTERRUPTED_REASON)
        UsageRecord.objects.filter(message_id__in=stale, status=MessageStatus.STREAMING).update(
            status=MessageStatus.FAILED, error=INTERRUPTED_REASON, error_kind="interrupted"
        )


def _question_for_regenerate(conversation: Conversation) -> Message:
    last = Message.objects.filter(conversation=conversation).order_by("-created_at", "-id").first()
    if last is not None and last.role == Role.ASSISTANT:
        last.delete()
        last = (
            Message.objects.filter(conversation=conversation).order_by("-created_at", "-id").first()
        )
    if last is None or last.role != Role.USER:
        raise InvalidInput(_("There is no question to answer again."))
    return last


def _turn_prepare(
    *,
    user: User,
    conversation_id: int,
    content: str,
    regenerate: bool,
    provider: str | None,
    model: str | None,
    params: Mapping[str, Any] | None,
) -> tuple[_Turn, list[KnowledgeBase]]:
    """Check the question, reserve its answer in the user's daily quota, and build its
    answer's request: a handful of reads, and writes only for the reservation (with a limit)
    and what the checks themselves change (stale answers failed, a regenerated answer deleted,
    new settings). Returns the turn and the rows of its knowledge bases (for retrieval). The
    question and answer rows are :func:`_turn_record`'s, which runs while the provider is
    asked. Raises ``NotFound``, ``Conflict``, ``InvalidInput`` and the quota's error; a
    question refused leaves no trace (its reservation is given back)."""
    conversation = selectors.conversation_get_for_user(
        conversation_id=conversation_id, user=user, prefetch=False
    )
    if not regenerate and not content.strip():
        raise InvalidInput(_("The message is empty."))
    messages = _messages(conversation)
    _fail_stale_answers(conversation, messages)  # first: it gives back their reservations
    # Before anything else is written, and before the provider is asked.
    reservation = quota_reserve(
        user=user,
        provider=conversation.provider or default_provider_name(),
        conversation_id=conversation.pk,
        question=content,
    )
    try:
        turn, knowledge_bases = _turn_build(
            conversation,
            messages,
            user=user,
            content=content,
            regenerate=regenerate,
            provider=provider,
            model=model,
            params=params,
        )
    except BaseException:
        quota_release(reservation_id=reservation)
        raise
    return replace(turn, reservation_id=reservation), knowledge_bases


def _turn_build(
    conversation: Conversation,
    messages: list[_Row],
    *,
    user: User,
    content: str,
    regenerate: bool,
    provider: str | None,
    model: str | None,
    params: Mapping[str, Any] | None,
) -> tuple[_Turn, list[KnowledgeBase]]:
    question_id: int | None = None
    changes = regenerate or provider is not None or model is not None or params is not None
    # A plain question writes nothing here (its reservation is written before, with a limit):
    # no transaction, which on SQLite would take the write lock.
    with transaction.atomic() if changes else contextlib.nullcontext():
        if provider is not None or model is not None or params is not None:
            conversation_update(
                conversation=conversation, user=user, provider=provider, model=model, params=params
            )
        if regenerate:
            question = _question_for_regenerate(conversation)
            question_id, content = question.pk, question.content
    documents = selectors.conversation_document_ids(conversation_id=conversation.pk)
    # Only those the owner may still read: sharing can be withdrawn after attaching.
    knowledge_bases = knowledge_base_list_readable(
        user=user, knowledge_bases=conversation.knowledge_bases.all()
    )
    request = AnswerRequest(
        question=content,
        provider=conversation.provider or default_provider_name(),
        model=conversation.model,
        params=GenerationParams.from_mapping(conversation.params),
        history=_history(messages, question_id),
        knowledge_base_ids=tuple(kb.pk for kb in knowledge_bases),
        document_ids=tuple(documents) if documents else None,
        instructions=conversation.system_prompt,
    )
    title = "" if conversation.title else title_from_question(question=content)
    turn = _Turn(conversation.pk, int(user.pk or 0), request, question_id, title)
    return turn, knowledge_bases


def _turn_prepare_and_retrieve(**options: Any) -> _Turn:
    """:func:`_turn_prepare`, then retrieval in the same database round trip, outside its
    transaction, over the knowledge base rows it read. A retrieval error is left to the
    answer's task, which retries and fails the answer with the reason (the question is saved
    by then)."""
    turn, knowledge_bases = _turn_prepare(**options)
    try:
        request = with_passages(turn.request, knowledge_bases=knowledge_bases)
        return replace(turn, request=request)
    except Exception:
        logger.warning("retrieval in conversation %s failed", turn.conversation_id, exc_info=True)
        return turn


@transaction.atomic
def _turn_record(turn: _Turn) -> _Saved:
    """Save the question (unless regenerated) and the answer's row, ``streaming``, in one
    transaction. Raises ``NotFound`` when the conversation was deleted meanwhile."""
    now = timezone.now()
    conversations = Conversation.objects.filter(pk=turn.conversation_id)
    if turn.title:
        conversations.filter(title="").update(title=turn.title)
    if not conversations.update(updated_at=now):
        raise NotFound(_("The conversation was deleted."))
    request = turn.request
    answer = Message(
        conversation_id=turn.conversation_id,
        role=Role.ASSISTANT,
        status=MessageStatus.STREAMING,
        provider=request.provider,
        model=request.model,
        params=request.params.as_dict(),
    )
    if turn.question_id is not None:
        answer.save()
        saved = _Saved(turn.question_id, answer.pk)
    else:
        question = Message(
            conversation_id=turn.conversation_id, role=Role.USER, content=request.question
        )
        Message.objects.bulk_create([question, answer])  # ids in this order: the question first
        saved = _Saved(question.pk, answer.pk)
    if turn.reservation_id is not None:  # so that a process that dies gives it back later
        UsageRecord.objects.filter(pk=turn.reservation_id).update(message_id=answer.pk)
    return saved
