"""The answer: saved as it streams by a task detached from whoever asked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from chat import grounding, selectors
from chat.events import ChatEvent, DoneEvent, GroundingEvent, error_event
from chat.models import (
    Message,
    MessageStatus,
)
from chat.pipeline import (
    NO_ANSWER_FINISH,
    answer_stream,
)
from chat.services._finish import _Outcome, message_finish
from chat.services._grounding import (
    grounding_passages,
    grounding_wanted,
    message_grounding_record,
)
from chat.services._runs import Run, runs
from chat.services._turns import (
    _Saved,
)

# Re-exported explicitly: the tests replace them here, where the answer path looks them up.
from chat.services._turns import _Turn as _Turn
from chat.services._turns import _turn_prepare_and_retrieve as _turn_prepare_and_retrieve
from chat.services._turns import _turn_record as _turn_record
from core.errors import ApplicationError, Conflict
from providers.errors import ProviderError
from usage.quotas import quota_release

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser


logger = logging.getLogger(__name__)

SAVE_EVERY = 0.5  # seconds between saves of a streaming answer
STOPPED_REASON = gettext_noop("Stopped by the user.")


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


def _finish(message_id: int, outcome: _Outcome, turn: _Turn) -> None:
    """:func:`message_finish`: an answer that said the documents do not answer (the pipeline's
    weak-passage rule) is recorded as such, its message's ``finish_reason`` ``no_answer`` and
    its usage record ``refused`` (and as having found no good context)."""
    message_finish(message_id=message_id, outcome=outcome, turn=turn)


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
                await database_sync_to_async(_finish)(saved.message_id, outcome, turn)
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
                refused=outcome.usage is not None
                and outcome.usage["finish_reason"] == NO_ANSWER_FINISH,
            ):
                grounded = await _ground(saved.message_id, outcome, turn)
                if grounded is not None:
                    run.publish(grounded)
            run.publish(None)


async def _ground(message_id: int, outcome: _Outcome, turn: _Turn) -> GroundingEvent | None:
    """The grounding check of a saved, complete answer, on a worker thread (not the database
    thread), stored, and its event; None when it could not be (logged: the answer stands)."""
    try:
        passages = grounding_passages(sources=outcome.sources, retrieved=turn.request.passages)
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


def answer_running(*, conversation_id: int) -> bool:
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
        conversation_id=conversation_id, user=user, prefetch=False
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


async def answer_wait(*, conversation_id: int) -> None:
    """Wait until the answer running in this process for the conversation is saved (tests,
    shutdown)."""
    run = runs.get(conversation_id)
    if run is not None and run.task is not None:
        await asyncio.wait({run.task})
