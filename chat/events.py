"""The typed events an answer streams, the same over the websocket and SSE."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

from core.errors import database_unavailable_message

if TYPE_CHECKING:
    from core.errors import ApplicationError


class StartEvent(TypedDict):
    """The question is saved and the answer (``message_id``) is on its way."""

    type: Literal["start"]
    conversation_id: int
    user_message_id: int
    message_id: int


class DeltaEvent(TypedDict):
    """A piece of the answer; ``replaces``: it replaces all text streamed so far."""

    type: Literal["delta"]
    text: str
    replaces: bool


class CitationPayload(TypedDict):
    number: int
    chunk_id: int | None
    document_id: int | None
    document_title: str
    file_name: str
    page: int | None
    score: float
    quote: str


class SourcesEvent(TypedDict):
    """The passages given to the model, numbered as the answer will cite them."""

    type: Literal["sources"]
    sources: list[CitationPayload]


class CitationsEvent(TypedDict):
    """The sources the answer cited (only those), by their ``[number]``."""

    type: Literal["citations"]
    citations: list[CitationPayload]


class UsageEvent(TypedDict):
    type: Literal["usage"]
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    first_token_ms: int | None
    total_ms: int
    finish_reason: str


class ErrorEvent(TypedDict):
    """Something went wrong; ``message`` is written for the user. A refusal a client may act on
    also has a ``code`` (``quota_exceeded``, ``rate_limited``) and its ``details`` (for a quota:
    ``limit``, ``limit_value``, ``used``, ``resets_at``, ``retry_after``)."""

    type: Literal["error"]
    message: str
    retryable: bool
    code: NotRequired[str]
    details: NotRequired[dict[str, Any]]


class DoneEvent(TypedDict):
    """How an answer ended (complete, stopped or failed): the last event but a ``grounding``,
    which may follow a complete one."""

    type: Literal["done"]
    message_id: int | None
    status: str


class GroundingSpan(TypedDict):
    """Character offsets of a sentence in the answer's text: ``text[start:end]``."""

    start: int
    end: int


class GroundingEvent(TypedDict):
    """The grounding check of a complete answer given passages, sent after ``done`` (the answer
    is saved first; the check runs then): ``unsupported``, the sentences no passage given to
    the model supports (a client marks them "not found in the sources");
    ``supported_share``, supported sentences / sentences counted (None: none counted). The
    message API returns the same as the message's ``grounding``. Not sent for a stopped or
    failed answer, or one given no passages."""

    type: Literal["grounding"]
    message_id: int
    supported_share: float | None
    unsupported: list[GroundingSpan]


ChatEvent = (
    StartEvent
    | SourcesEvent
    | DeltaEvent
    | CitationsEvent
    | UsageEvent
    | ErrorEvent
    | DoneEvent
    | GroundingEvent
)


def error_event(message: str, *, retryable: bool = False) -> ErrorEvent:
    return {"type": "error", "message": message, "retryable": retryable}


def application_error_event(exc: ApplicationError) -> ErrorEvent:
    """The error event of an application error; its ``code`` and details when it has one."""
    event = error_event(exc.message)
    code = exc.extra.get("code")
    if isinstance(code, str):
        event["code"] = code
        event["details"] = {k: v for k, v in exc.extra.items() if k != "code"}
    return event


def database_unavailable_events() -> list[ChatEvent]:
    """What a client gets when the database stops answering during a turn: a retryable
    ``error`` and a failed ``done``. Whatever the turn had saved stays as it was saved."""
    done: DoneEvent = {"type": "done", "message_id": None, "status": "failed"}
    return [error_event(database_unavailable_message(), retryable=True), done]
