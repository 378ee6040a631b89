"""The answer: saved as it streams by a task detached from whoever asked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from chat import grounding, selectors
from chat.events import ChatEvent, DoneEvent, GroundingEvent, error_event
from chat.models import (
    Conversation,
    Message,
    MessageStatus,
    Role,
)
from chat.pipeline import AnswerRequest, GenerationParams, answer_stream, with_passages
from chat.services._conversations import conversation_update, title_from_question
from chat.services._finish import _Outcome, message_finish
from chat.services._grounding import (
    grounding_passages,
    grounding_wanted,
    message_grounding_record,
)
from chat.services._runs import Run, runs
from core.errors import ApplicationError, Conflict, InvalidInput, NotFound
from documents.models import KnowledgeBase
from documents.selectors import knowledge_base_list_readable
from providers.base import ChatMessage
from providers.errors import ProviderError
from providers.registry import default_provider_name
from usage.models import UsageRecord
from usage.quotas import quota_release, quota_reserve

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser


logger = logging.getLogger(__name__)

SAVE_EVERY = 0.5  # seconds between saves of a streaming answer
STOPPED_REASON = gettext_noop("Stopped by the user.")
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
    conversation = selectors.conversation_get_for_user(conversation_id, user, prefetch=False)
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
                conversation, user=user, provider=provider, model=model, params=params
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
    title = "" if conversation.title else title_from_question(content)
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


def _save_partial(message_id: int, text: str) -> bool:
    """Save the text so far; False when the answer is no longer streaming (stopped elsewhere)."""
    return bool(
        Message.objects.filter(pk=message_id, status=MessageStatus.STREAMING).update(
            content=text, updated_at=timezone.now()
        )
    )


class _StoppedElsewhere(Exception):
    pass


class _Release:
    """The answer's events held back until its rows are saved: the rows are written on the
    database thread while the provider is already being asked. The first event published is
    ``start``, with their ids, as soon as they are saved."""

    def __init__(self, run: Run, turn: _Turn) -> None:
        self.run = run
        self.turn = turn
        self.saved: _Saved | None = None
        self.held: list[ChatEvent] = []
        self.saving = asyncio.ensure_future(database_sync_to_async(_turn_record)(turn))
        self.saving.add_done_callback(self._on_saved)

    def _on_saved(self, saving: asyncio.Future[_Saved]) -> None:
        if self.saved is not None or saving.cancelled() or saving.exception() is not None:
            return
        self.saved = saved = saving.result()
        self.run.publish(
            {
                "type": "start",
                "conversation_id": self.turn.conversation_id,
                "user_message_id": saved.user_message_id,
                "message_id": saved.message_id,
            }
        )
        for event in self.held:
            self.run.publish(event)
        self.held.clear()

    def publish(self, event: ChatEvent) -> None:
        if self.saved is None:
            self.held.append(event)
        else:
            self.run.publish(event)

    async def __call__(self) -> _Saved:
        """The saved rows' ids, waiting for them. Raises what saving raised. A cancellation
        does not cancel the saving."""
        await asyncio.shield(self.saving)
        self._on_saved(self.saving)
        assert self.saved is not None
        return self.saved


async def _stream_into(release: _Release, outcome: _Outcome) -> None:
    request = release.turn.request
    started = request.started
    last_save = time.monotonic()
    async with contextlib.aclosing(answer_stream(request)) as events:
        async for event in events:
            if event["type"] == "delta":
                saved = await release()
                if outcome.first_token_ms is None:
                    outcome.first_token_ms = int((time.monotonic() - started) * 1000)
                outcome.text = event["text"] if event["replaces"] else outcome.text + event["text"]
                if time.monotonic() - last_save >= SAVE_EVERY:
                    if not await database_sync_to_async(_save_partial)(
                        saved.message_id, outcome.text
                    ):
                        raise _StoppedElsewhere
                    last_save = time.monotonic()
            elif event["type"] == "sources":
                outcome.sources = event["sources"]
            elif event["type"] == "citations":
                outcome.citations = event["citations"]
            elif event["type"] == "usage":
                # The first token as published, which waited for the rows if they were slower.
                event = {**event, "first_token_ms": outcome.first_token_ms}
                outcome.usage = event
            release.publish(event)


async def _answer(run: Run, turn: _Turn) -> None:
    """The detached task: save the question and the answer's row while the provider is asked,
    stream, save, and always finish the message and the listeners."""
    outcome = _Outcome()
    release = _Release(run, turn)
    error: ChatEvent | None = None
    try:
        await _stream_into(release, outcome)
    except (asyncio.CancelledError, _StoppedElsewhere):
        outcome.status, outcome.error = MessageStatus.STOPPED, _(STOPPED_REASON)
        outcome.error_kind = "stopped"
    except (ProviderError, ApplicationError) as exc:
        outcome.status, outcome.error = MessageStatus.FAILED, exc.message
        outcome.error_kind = type(exc).__name__
        error = error_event(exc.message, retryable=getattr(exc, "retryable", False))
    except Exception as exc:
        logger.exception("answer in conversation %s failed", turn.conversation_id)
        outcome.status, outcome.error = MessageStatus.FAILED, _("The answer failed unexpectedly.")
        outcome.error_kind = type(exc).__name__
        error = error_event(outcome.error)
    finally:
        try:
            saved: _Saved | None = await release()
        except ApplicationError as exc:  # the conversation was deleted before the question
            saved, error = None, error_event(exc.message)
        except BaseException:
            logger.exception("question in conversation %s not saved", turn.conversation_id)
            saved, error = None, error_event(_("The question could not be saved; ask again."))
        if error is not None:
            run.publish(error)
        if outcome.status != MessageStatus.COMPLETE:
            outcome.citations = None
        try:
            if saved is not None:
                await database_sync_to_async(message_finish)(
                    message_id=saved.message_id, outcome=outcome, turn=turn
                )
            elif turn.reservation_id is not None:  # no question saved: no answer either
                await database_sync_to_async(quota_release)(reservation_id=turn.reservation_id)
        except Exception:
            logger.exception("answer in conversation %s could not be saved", turn.conversation_id)
        finally:
            runs.pop(turn.conversation_id, None)
            done: DoneEvent = {
                "type": "done",
                "message_id": saved.message_id if saved is not None else None,
                "status": str(outcome.status) if saved is not None else MessageStatus.FAILED,
            }
            run.publish(done)
            if saved is not None and grounding_wanted(
                provider=turn.request.provider,
                complete=outcome.status == MessageStatus.COMPLETE,
                sources=outcome.sources,
            ):
                grounded = await _ground(saved.message_id, outcome, turn)
                if grounded is not None:
                    run.publish(grounded)
            run.publish(None)


async def _ground(message_id: int, outcome: _Outcome, turn: _Turn) -> GroundingEvent | None:
    """The grounding check of a saved, complete answer, on a worker thread (not the database
    thread), stored, and its event; None when it could not be (logged: the answer stands)."""
    try:
        passages = grounding_passages(outcome.sources, turn.request.passages)
        report = await asyncio.to_thread(grounding.check, answer=outcome.text, passages=passages)
        event: GroundingEvent | None = await database_sync_to_async(message_grounding_record)(
            message_id=message_id, report=report
        )
        return event
    except Exception:
        logger.exception("grounding check of message %s failed", message_id)
        return None


async def message_send(
    *,
    user: User,
    conversation_id: int,
    content: str = "",
    regenerate: bool = False,
    provider: str | None = None,
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> AsyncGenerator[ChatEvent, None]:
    """Ask ``content`` in the conversation (``regenerate``: answer the last question again,
    replacing the last answer), and yield the answer's events: ``start``, ``sources``,
    ``delta``s, then ``citations`` and ``usage`` (or ``error``), and always ``done``; after it,
    a complete answer given passages has its ``grounding`` (checked once it is saved).

    ``provider``/``model``/``params`` given change the conversation for this and later
    answers. The question is saved before the answer starts; the answer is saved while it
    streams by a task that outlives this generator: closing the generator (the client went
    away) does not stop it, :func:`answer_stop` does. Holds no database connection while the
    provider streams. Raises, before any event, ``NotFound`` for a conversation that is not the
    user's, ``Conflict`` while another answer is being written in it, and ``InvalidInput``.
    """
    if conversation_id in runs:
        await conversation_check(user=user, conversation_id=conversation_id)  # NotFound first
        raise Conflict(_("An answer is still being written in this conversation; stop it first."))
    # Registered before the first await, so that a second question cannot slip in meanwhile;
    # the access check is in _turn_prepare.
    run = runs[conversation_id] = Run(conversation_id)
    preparing = asyncio.ensure_future(
        database_sync_to_async(_turn_prepare_and_retrieve)(
            user=user,
            conversation_id=conversation_id,
            content=content,
            regenerate=regenerate,
            provider=provider,
            model=model,
            params=params,
        )
    )
    try:
        # Shielded: cancelled meanwhile (the client went away), the turn is still known when it
        # is ready, and its quota reservation given back.
        turn = await asyncio.shield(preparing)
    except BaseException:
        runs.pop(conversation_id, None)
        preparing.add_done_callback(_release_unused)
        raise
    queue = run.subscribe()
    run.task = asyncio.create_task(_answer(run, turn), name=f"answer-{conversation_id}")
    try:
        while (event := await queue.get()) is not None:
            yield event
    finally:
        run.unsubscribe(queue)


_releasing: set[asyncio.Task[None]] = set()


def _release_unused(preparing: asyncio.Future[_Turn]) -> None:
    """Give back the quota reservation of a turn prepared for an answer that will not start."""
    if preparing.cancelled() or preparing.exception() is not None:
        return  # nothing reserved, or given back by the preparation itself
    reservation_id = preparing.result().reservation_id
    if reservation_id is not None:
        task = asyncio.ensure_future(
            database_sync_to_async(quota_release)(reservation_id=reservation_id)
        )
        _releasing.add(task)
        task.add_done_callback(_releasing.discard)


def answer_running(conversation_id: int) -> bool:
    """Whether this process is writing an answer in the conversation (no access check: it
    reveals nothing but to the owner, whose access the caller has checked)."""
    run = runs.get(conversation_id)
    return run is not None and run.task is not None and not run.task.done()


async def answer_follow(*, user: User, conversation_id: int) -> AsyncGenerator[ChatEvent, None]:
    """The events of the answer being written in the conversation by this process, from its
    ``start`` (replayed) to its ``done``; nothing when none is. For a client that reconnects
    mid-answer. Raises ``NotFound`` for a conversation that is not the user's."""
    await conversation_check(user=user, conversation_id=conversation_id)
    run = runs.get(conversation_id)
    if run is None or run.task is None:
        return
    queue = run.subscribe()
    try:
        while (event := await queue.get()) is not None:
            yield event
    finally:
        run.unsubscribe(queue)


async def message_answer(*, user: User, conversation_id: int, content: str, **options: Any) -> int:
    """:func:`message_send` collected: waits for the whole answer and returns its message id
    (whatever its status). Raises like :func:`message_send`."""
    message_id = 0
    async for event in message_send(
        user=user, conversation_id=conversation_id, content=content, **options
    ):
        if event["type"] == "start":
            message_id = event["message_id"]
    return message_id


def _stop_elsewhere(conversation_id: int) -> int:
    return Message.objects.filter(
        conversation_id=conversation_id, status=MessageStatus.STREAMING
    ).update(status=MessageStatus.STOPPED, error=_(STOPPED_REASON))


async def conversation_check(*, user: User, conversation_id: int) -> None:
    """Raises ``NotFound`` unless the conversation is ``user``'s (a websocket's connect)."""
    await database_sync_to_async(selectors.conversation_get_for_user)(
        conversation_id, user, prefetch=False
    )


async def answer_stop(*, user: User, conversation_id: int) -> bool:
    """Stop the answer being written in the conversation; its partial text is kept as
    ``stopped``. An answer running in another process notices at its next save. Returns whether
    there was one. Raises ``NotFound`` for a conversation that is not the user's."""
    await conversation_check(user=user, conversation_id=conversation_id)
    run = runs.get(conversation_id)
    if run is not None and run.cancel():
        return True
    return bool(await database_sync_to_async(_stop_elsewhere)(conversation_id))


async def answer_wait(conversation_id: int) -> None:
    """Wait until the answer running in this process for the conversation is saved (tests,
    shutdown)."""
    run = runs.get(conversation_id)
    if run is not None and run.task is not None:
        await asyncio.wait({run.task})
