"""Writes of the chat: conversations, prompt templates, and the answer itself.

:func:`message_send` is the one async service the transports call. It saves the question,
starts the answer as a task detached from the caller (so a browser that goes away does not stop
it), and yields the answer's typed events while the caller listens. The task saves the answer as
it streams (at most every ``SAVE_EVERY`` seconds) and marks it ``stopped`` or ``failed`` with
the partial text and the reason. :func:`answer_stop` cancels it explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import string
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chat import selectors
from chat.citations import resolve
from chat.events import ChatEvent, CitationPayload, DoneEvent, UsageEvent, error_event
from chat.models import (
    Citation,
    Conversation,
    Message,
    MessageStatus,
    PromptTemplate,
    Role,
)
from chat.pipeline import AnswerRequest, GenerationParams, answer_stream
from documents.models import Chunk, Document
from documents.selectors import knowledge_base_get_for_user
from providers.base import ChatMessage
from providers.errors import ProviderError
from providers.registry import PROVIDERS, default_provider_name
from raggen.errors import ApplicationError, Conflict, InvalidInput

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser

logger = logging.getLogger(__name__)

SAVE_EVERY = 0.5  # seconds between saves of a streaming answer
TITLE_CHARS = 80
STOPPED_REASON = "Stopped by the user."
INTERRUPTED_REASON = "The server stopped while writing this answer."
PARAM_KEYS = ("temperature", "max_tokens", "top_k")


# --- conversations -------------------------------------------------------------------------


def title_from_question(question: str) -> str:
    """The first words of ``question``, at most ``TITLE_CHARS`` characters."""
    text = " ".join(question.split())
    if len(text) <= TITLE_CHARS:
        return text
    return text[:TITLE_CHARS].rsplit(" ", 1)[0] + "…"


def _user_id(user: User) -> int:
    if not user.is_authenticated:
        raise InvalidInput("Sign in first.")
    return int(user.pk)


def _check_provider(name: str) -> str:
    if name and name not in PROVIDERS:
        raise InvalidInput(f"There is no provider {name!r}; use one of {', '.join(PROVIDERS)}.")
    return name


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (params or {}).items() if k in PARAM_KEYS and v is not None}


def _set_sources(
    conversation: Conversation,
    user: User,
    knowledge_base_ids: Iterable[int],
    document_ids: Iterable[int],
) -> None:
    kbs = [knowledge_base_get_for_user(kb_id, user) for kb_id in dict.fromkeys(knowledge_base_ids)]
    wanted = set(document_ids)
    documents = list(Document.objects.filter(pk__in=wanted, knowledge_base__in=kbs))
    if len(documents) != len(wanted):
        raise InvalidInput("Choose documents only from the attached knowledge bases.")
    conversation.knowledge_bases.set(kbs)
    conversation.documents.set(documents)


@transaction.atomic
def conversation_create(
    *,
    owner: User,
    title: str = "",
    knowledge_base_ids: Iterable[int] = (),
    document_ids: Iterable[int] = (),
    provider: str = "",
    model: str = "",
    params: Mapping[str, Any] | None = None,
    system_prompt: str = "",
    template_id: int | None = None,
) -> Conversation:
    """A conversation of ``owner`` over knowledge bases they can read (none: a plain chat),
    optionally restricted to some of their documents. A template's parameter preset fills the
    parameters not given. Raises ``NotFound`` for a knowledge base or template the owner cannot
    see and ``InvalidInput`` for an unknown provider or a document outside the knowledge bases.
    """
    template = (
        selectors.prompt_template_get_for_user(template_id, owner)
        if template_id is not None
        else None
    )
    preset = _clean_params(template.params) if template else {}
    conversation = Conversation(
        owner_id=_user_id(owner),
        title=title.strip()[:200],
        provider=_check_provider(provider),
        model=model,
        params={**preset, **_clean_params(params)},
        system_prompt=system_prompt,
        template=template,
    )
    conversation.full_clean()
    conversation.save()
    _set_sources(conversation, owner, knowledge_base_ids, document_ids)
    return conversation


@transaction.atomic
def conversation_update(
    conversation: Conversation,
    *,
    user: User,
    title: str | None = None,
    knowledge_base_ids: Iterable[int] | None = None,
    document_ids: Iterable[int] | None = None,
    provider: str | None = None,
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
    system_prompt: str | None = None,
) -> Conversation:
    """Rename the conversation or change what the next answers use (``None``: unchanged).
    ``params`` are merged into the current ones. Raises like :func:`conversation_create`."""
    if title is not None:
        conversation.title = title.strip()[:200]
    if provider is not None:
        conversation.provider = _check_provider(provider)
    if model is not None:
        conversation.model = model
    if params is not None:
        conversation.params = {**conversation.params, **_clean_params(params)}
    if system_prompt is not None:
        conversation.system_prompt = system_prompt
    conversation.full_clean()
    conversation.save()
    if knowledge_base_ids is not None or document_ids is not None:
        kb_ids = (
            knowledge_base_ids
            if knowledge_base_ids is not None
            else conversation.knowledge_bases.values_list("pk", flat=True)
        )
        doc_ids = document_ids if document_ids is not None else ()
        _set_sources(conversation, user, list(kb_ids), list(doc_ids))
    return conversation


def conversation_delete(conversation: Conversation) -> None:
    """Delete the conversation with its messages and citations; a running answer is stopped."""
    run = _runs.get(conversation.pk)
    if run is not None:
        run.cancel()
    conversation.delete()


# --- prompt templates ------------------------------------------------------------------------


def template_placeholders(body: str) -> list[str]:
    """The ``{names}`` in ``body``, in order, each once. Raises ``InvalidInput`` for a malformed
    body (a lone brace, a positional ``{}``)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(body) if f is not None]
    except ValueError as exc:
        raise InvalidInput(f"The template is malformed: {exc}. Write {{{{ for a brace.}}") from exc
    if any(not f.isidentifier() for f in fields):
        raise InvalidInput("Placeholders are names in braces, like {topic}.")
    return list(dict.fromkeys(fields))


def prompt_template_create(
    *, owner: User, name: str, body: str, params: Mapping[str, Any] | None = None
) -> PromptTemplate:
    """A personal template. Raises ``InvalidInput`` for a malformed body and ``Conflict`` when
    the owner already has a template of that name."""
    template_placeholders(body)
    if PromptTemplate.objects.filter(owner_id=_user_id(owner), name=name).exists():
        raise Conflict(f"You already have a template called {name!r}.")
    template = PromptTemplate(
        owner_id=_user_id(owner), name=name, body=body, params=_clean_params(params)
    )
    template.full_clean()
    template.save()
    return template


def prompt_template_update(
    template: PromptTemplate,
    *,
    name: str | None = None,
    body: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> PromptTemplate:
    """Change a personal template (``None``: unchanged). Raises like the creation."""
    if body is not None:
        template_placeholders(body)
        template.body = body
    if name is not None and name != template.name:
        if PromptTemplate.objects.filter(owner_id=template.owner_id, name=name).exists():
            raise Conflict(f"You already have a template called {name!r}.")
        template.name = name
    if params is not None:
        template.params = _clean_params(params)
    template.full_clean()
    template.save()
    return template


def prompt_template_render(template: PromptTemplate, values: Mapping[str, str]) -> str:
    """The template's body with its placeholders filled. Raises ``InvalidInput`` naming the
    placeholders without a value."""
    missing = [name for name in template_placeholders(template.body) if name not in values]
    if missing:
        raise InvalidInput(f"Fill in {', '.join(missing)}.", {"missing": missing})
    return template.body.format_map(dict(values))


# --- the answer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Turn:
    conversation_id: int
    user_message_id: int
    message_id: int
    request: AnswerRequest


@dataclass
class _Run:
    """An answer being written in this process, and the queues of whoever listens to it."""

    conversation_id: int
    task: asyncio.Task[None] | None = None
    queues: list[asyncio.Queue[ChatEvent | None]] = field(default_factory=list)

    def subscribe(self) -> asyncio.Queue[ChatEvent | None]:
        queue: asyncio.Queue[ChatEvent | None] = asyncio.Queue()
        self.queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[ChatEvent | None]) -> None:
        with contextlib.suppress(ValueError):
            self.queues.remove(queue)

    def publish(self, event: ChatEvent | None) -> None:
        for queue in self.queues:
            queue.put_nowait(event)

    def cancel(self) -> bool:
        """Cancel the task, from any thread. False when there is none or it has finished."""
        task = self.task
        if task is None or task.done():
            return False
        task.get_loop().call_soon_threadsafe(task.cancel)
        return True


# Answers running in this process, by conversation id: one at a time per conversation.
_runs: dict[int, _Run] = {}


def _history(conversation: Conversation, before_id: int) -> tuple[ChatMessage, ...]:
    rows = (
        Message.objects.filter(conversation=conversation, pk__lt=before_id)
        .exclude(role=Role.ASSISTANT, status__in=(MessageStatus.FAILED, MessageStatus.STREAMING))
        .exclude(content="")
        .order_by("created_at", "id")
        .values_list("role", "content")
    )
    return tuple(ChatMessage("user" if r == Role.USER else "assistant", c) for r, c in rows)


def _fail_stale_answers(conversation: Conversation) -> None:
    """Mark answers left ``streaming`` by a process that died as failed; raises ``Conflict``
    when one may still be streaming elsewhere."""
    streaming = Message.objects.filter(conversation=conversation, status=MessageStatus.STREAMING)
    stale_before = timezone.now() - timedelta(seconds=settings.LLM_READ_TIMEOUT + 30)
    streaming.filter(updated_at__lt=stale_before).update(
        status=MessageStatus.FAILED, error=INTERRUPTED_REASON
    )
    if streaming.exists():
        raise Conflict("An answer is still being written in this conversation; stop it first.")


def _question_for_regenerate(conversation: Conversation) -> Message:
    last = Message.objects.filter(conversation=conversation).order_by("-created_at", "-id").first()
    if last is not None and last.role == Role.ASSISTANT:
        last.delete()
        last = (
            Message.objects.filter(conversation=conversation).order_by("-created_at", "-id").first()
        )
    if last is None or last.role != Role.USER:
        raise InvalidInput("There is no question to answer again.")
    return last


@transaction.atomic
def _turn_prepare(
    *,
    user: User,
    conversation_id: int,
    content: str,
    regenerate: bool,
    provider: str | None,
    model: str | None,
    params: Mapping[str, Any] | None,
) -> _Turn:
    conversation = selectors.conversation_get_for_user(conversation_id, user)
    _fail_stale_answers(conversation)
    if provider is not None or model is not None or params is not None:
        conversation_update(conversation, user=user, provider=provider, model=model, params=params)
    if regenerate:
        question = _question_for_regenerate(conversation)
    else:
        if not content.strip():
            raise InvalidInput("The message is empty.")
        question = Message.objects.create(
            conversation=conversation, role=Role.USER, content=content
        )
    if not conversation.title:
        conversation.title = title_from_question(question.content)
    conversation.save(update_fields=["title", "updated_at"])
    generation = GenerationParams.from_mapping(conversation.params)
    provider_name = conversation.provider or default_provider_name()
    answer = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=MessageStatus.STREAMING,
        provider=provider_name,
        model=conversation.model,
        params=generation.as_dict(),
    )
    documents = [d.pk for d in conversation.documents.all()]
    request = AnswerRequest(
        question=question.content,
        provider=provider_name,
        model=conversation.model,
        params=generation,
        history=_history(conversation, question.pk),
        knowledge_base_ids=tuple(kb.pk for kb in conversation.knowledge_bases.all()),
        document_ids=tuple(documents) if documents else None,
        instructions=conversation.system_prompt,
    )
    return _Turn(conversation.pk, question.pk, answer.pk, request)


def _save_partial(message_id: int, text: str) -> bool:
    """Save the text so far; False when the answer is no longer streaming (stopped elsewhere)."""
    return bool(
        Message.objects.filter(pk=message_id, status=MessageStatus.STREAMING).update(
            content=text, updated_at=timezone.now()
        )
    )


@dataclass
class _Outcome:
    text: str = ""
    status: str = MessageStatus.COMPLETE
    error: str = ""
    sources: list[CitationPayload] = field(default_factory=list)
    citations: list[CitationPayload] | None = None
    usage: UsageEvent | None = None
    first_token_ms: int | None = None


def _existing(model: type[Chunk] | type[Document], ids: Iterable[int | None]) -> set[int]:
    return set(model.objects.filter(pk__in={i for i in ids if i}).values_list("pk", flat=True))


@transaction.atomic
def _save_final(message_id: int, outcome: _Outcome, started: float) -> None:
    cited = outcome.citations
    if cited is None:  # stopped or failed: the sources the partial text cited so far
        cited = [c for _, c in resolve(outcome.text, outcome.sources)]
    usage = outcome.usage
    fields: dict[str, Any] = {
        "content": outcome.text,
        "status": outcome.status,
        "error": outcome.error,
        "first_token_ms": outcome.first_token_ms,
        "total_ms": usage["total_ms"] if usage else int((time.monotonic() - started) * 1000),
        "updated_at": timezone.now(),
    }
    if usage:
        fields.update(
            model=usage["model"],
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
        )
    if not Message.objects.filter(pk=message_id).update(**fields):
        return  # the conversation was deleted meanwhile
    # A chunk or document may have been deleted while the answer streamed: keep the copy.
    chunks = _existing(Chunk, (c["chunk_id"] for c in cited))
    documents = _existing(Document, (c["document_id"] for c in cited))
    Citation.objects.filter(message_id=message_id).delete()
    Citation.objects.bulk_create(
        Citation(
            message_id=message_id,
            number=c["number"],
            chunk_id=c["chunk_id"] if c["chunk_id"] in chunks else None,
            document_id=c["document_id"] if c["document_id"] in documents else None,
            document_title=c["document_title"][:500],
            file_name=c["file_name"][:255],
            page=c["page"],
            score=c["score"],
            quote=c["quote"],
        )
        for c in cited
    )
    Conversation.objects.filter(messages__pk=message_id).update(updated_at=timezone.now())


class _StoppedElsewhere(Exception):
    pass


async def _stream_into(run: _Run, turn: _Turn, outcome: _Outcome) -> None:
    started = turn.request.started
    last_save = time.monotonic()
    async with contextlib.aclosing(answer_stream(turn.request)) as events:
        async for event in events:
            if event["type"] == "delta":
                if outcome.first_token_ms is None:
                    outcome.first_token_ms = int((time.monotonic() - started) * 1000)
                outcome.text = event["text"] if event["replaces"] else outcome.text + event["text"]
                if time.monotonic() - last_save >= SAVE_EVERY:
                    if not await database_sync_to_async(_save_partial)(
                        turn.message_id, outcome.text
                    ):
                        raise _StoppedElsewhere
                    last_save = time.monotonic()
            elif event["type"] == "sources":
                outcome.sources = event["sources"]
            elif event["type"] == "citations":
                outcome.citations = event["citations"]
            elif event["type"] == "usage":
                outcome.usage = event
            run.publish(event)


async def _answer(run: _Run, turn: _Turn) -> None:
    """The detached task: stream, save, and always finish the message and the listeners."""
    outcome = _Outcome()
    run.publish(
        {
            "type": "start",
            "conversation_id": turn.conversation_id,
            "user_message_id": turn.user_message_id,
            "message_id": turn.message_id,
        }
    )
    try:
        await _stream_into(run, turn, outcome)
    except (asyncio.CancelledError, _StoppedElsewhere):
        outcome.status, outcome.error = MessageStatus.STOPPED, STOPPED_REASON
    except (ProviderError, ApplicationError) as exc:
        outcome.status, outcome.error = MessageStatus.FAILED, exc.message
        run.publish(error_event(exc.message, retryable=getattr(exc, "retryable", False)))
    except Exception:
        logger.exception("answer %s failed", turn.message_id)
        outcome.status, outcome.error = MessageStatus.FAILED, "The answer failed unexpectedly."
        run.publish(error_event(outcome.error))
    finally:
        if outcome.status != MessageStatus.COMPLETE:
            outcome.citations = None
        try:
            await database_sync_to_async(_save_final)(
                turn.message_id, outcome, turn.request.started
            )
        except Exception:
            logger.exception("answer %s could not be saved", turn.message_id)
        finally:
            _runs.pop(turn.conversation_id, None)
            done: DoneEvent = {
                "type": "done",
                "message_id": turn.message_id,
                "status": str(outcome.status),
            }
            run.publish(done)
            run.publish(None)


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
    ``delta``s, then ``citations`` and ``usage`` (or ``error``), and always ``done``.

    ``provider``/``model``/``params`` given change the conversation for this and later
    answers. The question is saved before the answer starts; the answer is saved while it
    streams by a task that outlives this generator: closing the generator (the client went
    away) does not stop it, :func:`answer_stop` does. Holds no database connection while the
    provider streams. Raises, before any event, ``NotFound`` for a conversation that is not the
    user's, ``Conflict`` while another answer is being written in it, and ``InvalidInput``.
    """
    await database_sync_to_async(selectors.conversation_get_for_user)(conversation_id, user)
    if conversation_id in _runs:
        raise Conflict("An answer is still being written in this conversation; stop it first.")
    run = _runs[conversation_id] = _Run(conversation_id)
    try:
        turn = await database_sync_to_async(_turn_prepare)(
            user=user,
            conversation_id=conversation_id,
            content=content,
            regenerate=regenerate,
            provider=provider,
            model=model,
            params=params,
        )
    except BaseException:
        _runs.pop(conversation_id, None)
        raise
    queue = run.subscribe()
    run.task = asyncio.create_task(_answer(run, turn), name=f"answer-{turn.message_id}")
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
    ).update(status=MessageStatus.STOPPED, error=STOPPED_REASON)


async def conversation_check(*, user: User, conversation_id: int) -> None:
    """Raises ``NotFound`` unless the conversation is ``user``'s (a websocket's connect)."""
    await database_sync_to_async(selectors.conversation_get_for_user)(conversation_id, user)


async def answer_stop(*, user: User, conversation_id: int) -> bool:
    """Stop the answer being written in the conversation; its partial text is kept as
    ``stopped``. An answer running in another process notices at its next save. Returns whether
    there was one. Raises ``NotFound`` for a conversation that is not the user's."""
    await database_sync_to_async(selectors.conversation_get_for_user)(conversation_id, user)
    run = _runs.get(conversation_id)
    if run is not None and run.cancel():
        return True
    return bool(await database_sync_to_async(_stop_elsewhere)(conversation_id))


async def answer_wait(conversation_id: int) -> None:
    """Wait until the answer running in this process for the conversation is saved (tests,
    shutdown)."""
    run = _runs.get(conversation_id)
    if run is not None and run.task is not None:
        await asyncio.wait({run.task})
