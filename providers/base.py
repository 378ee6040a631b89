"""The one small protocol every chat provider implements, and the plain data that crosses it.

A provider turns a :class:`ChatRequest` into a stream of :class:`Delta` objects. The last delta
of a successful stream (and only that one) has ``finish_reason`` set; its text is empty and it
carries the usage and the model that answered. A non-streaming answer is :func:`collect`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "other"]
# The cosine similarity of a question with each of some texts (one float per text, in order),
# e.g. the knowledge base's encoder behind a plain function: providers import no app.
SentenceSimilarity = Callable[[str, Sequence[str]], Sequence[float]]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class SourcePassage:
    """A retrieved passage the answer may cite as ``[number]``; ``page`` is None for unpaged
    documents."""

    number: int
    title: str
    text: str
    page: int | None = None


@dataclass(frozen=True)
class ChatRequest:
    """What to ask. An empty ``model`` means the provider's default model; ``None`` parameters
    mean the provider's configured defaults. ``sources`` are the retrieved passages: cloud
    providers see them only through the prompt the caller built into ``messages``; the offline
    provider quotes them. ``question`` is the user's question as typed, when the last user
    message wraps it in a prompt (the RAG prompt holds every passage's words): the offline
    provider answers it; cloud providers read the messages. ``similarity``, when given, helps
    the offline provider pick the sentences of the sources that answer (cloud providers ignore
    it); it may be slow (an encoder), so the provider calls it off the event loop."""

    messages: tuple[ChatMessage, ...]
    model: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    sources: tuple[SourcePassage, ...] = ()
    question: str = ""
    similarity: SentenceSimilarity | None = field(default=None, compare=False, repr=False)

    @property
    def last_user_text(self) -> str:
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")

    @property
    def question_text(self) -> str:
        """The question itself: ``question``, else the last user message."""
        return self.question or self.last_user_text


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True)
class Delta:
    """A piece of the answer. ``replaces`` means ``text`` replaces everything streamed so far
    (a content filter swapped the answer for a refusal, or the provider rewrote it)."""

    text: str
    replaces: bool = False
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    model: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    id: str
    kind: Literal["chat", "embedder", "other"] = "chat"
    description: str = ""


@runtime_checkable
class ChatProvider(Protocol):
    """A chat model behind one wire format."""

    name: str
    default_model: str

    def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        """Stream the answer to ``request``.

        Yields text deltas, then one final delta with ``finish_reason``, ``usage`` and
        ``model``. Raises :class:`providers.errors.ProviderError` (or a subclass) for every
        failure, also after some deltas were yielded when the stream breaks midway; callers
        keep the partial text. Closing the iterator (``aclose()`` or cancelling the task)
        closes the upstream HTTP stream at once.
        """
        ...

    async def list_models(self) -> list[ModelInfo]:
        """The models a user can pick. Raises ``ProviderError`` like :meth:`stream`."""
        ...


@dataclass(frozen=True)
class Answer:
    """A whole answer: what :func:`collect` returns."""

    provider: str
    model: str
    text: str
    finish_reason: FinishReason
    usage: Usage = field(default_factory=Usage)


def apply_delta(text: str, delta: Delta) -> str:
    """The answer text after ``delta``: appended, or replaced when ``delta.replaces``."""
    return delta.text if delta.replaces else text + delta.text


async def collect(provider: ChatProvider, request: ChatRequest) -> Answer:
    """The non-streaming answer: the stream collected. Raises what ``stream`` raises, and
    ``ProviderError`` if the stream ends without a final delta."""
    from providers.errors import ProviderStreamInterrupted

    text = ""
    async for delta in provider.stream(request):
        text = apply_delta(text, delta)
        if delta.finish_reason is not None:
            return Answer(
                provider=provider.name,
                model=delta.model or request.model or provider.default_model,
                text=text,
                finish_reason=delta.finish_reason,
                usage=delta.usage or Usage(),
            )
    raise ProviderStreamInterrupted(f"{provider.name}: the answer ended without a finish")
