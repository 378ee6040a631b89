"""The answer pipeline, independent of transports and of persistence.

retrieval (hybrid, over the knowledge bases, optionally only some documents) → context
optimisation (:mod:`chat.context`) → the prompt (:mod:`chat.prompts`) → the provider's stream →
the citations the answer actually made. :func:`answer_stream` yields typed events; storing them
is :mod:`chat.services`' business, printing them the ``ask`` command's.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from channels.db import database_sync_to_async

from chat import prompts
from chat.citations import resolve
from chat.context import Passage, context_window, plan_context
from chat.events import CitationPayload, CitationsEvent, DeltaEvent, SourcesEvent, UsageEvent
from documents.models import KnowledgeBase
from documents.retrieval import search
from providers.base import ChatMessage, ChatRequest, Delta, SourcePassage, apply_delta
from providers.errors import ProviderStreamInterrupted
from providers.registry import get_provider

DEFAULT_TOP_K = 8
QUOTE_CHARS = 2000


@dataclass(frozen=True)
class GenerationParams:
    """``None``: the provider's configured default. ``top_k``: passages given to the model."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_k: int = DEFAULT_TOP_K

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> GenerationParams:
        top_k = data.get("top_k")
        return cls(
            temperature=data.get("temperature"),
            max_tokens=data.get("max_tokens"),
            top_k=int(top_k) if top_k else DEFAULT_TOP_K,
        )

    def as_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "top_k": self.top_k}


@dataclass(frozen=True)
class AnswerRequest:
    """One question to answer. ``document_ids`` None: every document of the knowledge bases.
    No knowledge base: a plain chat. ``started`` (``time.monotonic()``) is when the question
    arrived, the origin of the reported timings."""

    question: str
    provider: str
    model: str = ""
    params: GenerationParams = field(default_factory=GenerationParams)
    history: tuple[ChatMessage, ...] = ()
    knowledge_base_ids: tuple[int, ...] = ()
    document_ids: tuple[int, ...] | None = None
    instructions: str = ""
    started: float = field(default_factory=time.monotonic)
    # Retrieved already (see with_passages); None: answer_stream retrieves.
    passages: tuple[Passage, ...] | None = None


def retrieve(
    *,
    knowledge_base_ids: Sequence[int],
    document_ids: Sequence[int] | None,
    query: str,
    top_k: int,
    knowledge_bases: Sequence[KnowledgeBase] | None = None,
) -> list[Passage]:
    """Hybrid search over the knowledge bases, best first, as passages. The caller has checked
    access to the knowledge bases; ``knowledge_bases``, when given, are their rows in id order,
    read already (one query less). Fetches twice ``top_k`` so that deduplication still leaves
    enough."""
    if knowledge_bases is None:
        kbs = list(KnowledgeBase.objects.filter(pk__in=knowledge_base_ids).order_by("pk"))
    else:
        kbs = list(knowledge_bases)
    if not kbs:
        return []
    hits = search(
        knowledge_bases=kbs, query=query, mode="hybrid", top_k=top_k * 2, document_ids=document_ids
    ).hits
    return [
        Passage(
            chunk_id=h.chunk_id,
            document_id=h.document_id,
            title=h.document_title,
            file_name=h.file_name,
            text=h.text,
            page=h.page_start,
            score=h.score,
            char_start=h.char_start,
            char_end=h.char_end,
            dense_score=h.dense_score,
        )
        for h in hits
    ]


def with_passages(
    request: AnswerRequest, *, knowledge_bases: Sequence[KnowledgeBase] | None = None
) -> AnswerRequest:
    """``request`` with its passages retrieved now, synchronously: a caller that is in a
    database round trip anyway saves one (a fresh connection costs several milliseconds before
    the first token). ``knowledge_bases``: the rows of ``request.knowledge_base_ids``, if the
    caller has read them. Raises like :func:`retrieve`."""
    if not request.knowledge_base_ids or request.passages is not None:
        return request
    found = retrieve(
        knowledge_base_ids=request.knowledge_base_ids,
        document_ids=request.document_ids,
        query=request.question,
        top_k=request.params.top_k,
        knowledge_bases=knowledge_bases,
    )
    return replace(request, passages=tuple(found))


def citation_payload(number: int, passage: Passage) -> CitationPayload:
    return {
        "number": number,
        "chunk_id": passage.chunk_id,
        "document_id": passage.document_id,
        "document_title": passage.title,
        "file_name": passage.file_name,
        "page": passage.page,
        "score": round(passage.score, 6),
        "quote": passage.text[:QUOTE_CHARS],
    }


def _elapsed_ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


@dataclass(frozen=True)
class _Prepared:
    chat_request: ChatRequest
    passages: tuple[Passage, ...]


async def _prepare(request: AnswerRequest, model: str) -> _Prepared:
    rag = bool(request.knowledge_base_ids)
    passages = list(request.passages or ())
    if rag and request.passages is None:
        passages = await database_sync_to_async(retrieve)(
            knowledge_base_ids=request.knowledge_base_ids,
            document_ids=request.document_ids,
            query=request.question,
            top_k=request.params.top_k,
        )
    system = prompts.system_prompt(rag=rag, instructions=request.instructions)
    plan = plan_context(
        passages=passages,
        history=request.history,
        fixed_text=system + request.question,
        window=context_window(model),
        answer_reserve=request.params.max_tokens or 1024,
        limit=request.params.top_k,
    )
    chosen = plan.passages
    question = prompts.question_prompt(request.question, chosen) if rag else request.question
    messages = (
        ChatMessage("system", system),
        *plan.history,
        ChatMessage("user", question),
    )
    sources = tuple(
        SourcePassage(number=n, title=p.title, text=p.text, page=p.page)
        for n, p in enumerate(chosen, start=1)
    )
    chat_request = ChatRequest(
        messages=messages,
        model=model,
        temperature=request.params.temperature,
        max_tokens=request.params.max_tokens,
        sources=sources,
        question=request.question,
    )
    return _Prepared(chat_request, chosen)


async def answer_stream(
    request: AnswerRequest,
) -> AsyncGenerator[SourcesEvent | DeltaEvent | CitationsEvent | UsageEvent, None]:
    """Answer ``request``: yields one ``sources`` event (the numbered passages given to the
    model, maybe none), ``delta`` events as the provider streams, then one
    ``citations`` event (only the sources the answer cited) and one ``usage`` event.

    Raises ``ProviderError`` (also midway, after some deltas: the caller keeps the partial
    text), ``UnknownProvider``/``ProviderNotConfigured`` before any delta, and
    ``ApplicationError`` from retrieval. Holds no database connection while the provider
    streams. Closing the generator closes the provider's stream.
    """
    provider = get_provider(request.provider)
    model = request.model or provider.default_model
    prepared = await _prepare(request, model)
    yield {
        "type": "sources",
        "sources": [citation_payload(n, p) for n, p in enumerate(prepared.passages, start=1)],
    }
    text = ""
    first_token_ms: int | None = None
    final: Delta | None = None
    async for delta in provider.stream(prepared.chat_request):
        if delta.text or delta.replaces:
            if first_token_ms is None:
                first_token_ms = _elapsed_ms(request.started)
            text = apply_delta(text, delta)
            yield {"type": "delta", "text": delta.text, "replaces": delta.replaces}
        if delta.finish_reason is not None:
            final = delta
    if final is None:
        raise ProviderStreamInterrupted(f"{provider.name}: the answer ended without a finish")
    cited = resolve(text, prepared.passages)
    yield {"type": "citations", "citations": [citation_payload(n, p) for n, p in cited]}
    usage = final.usage
    yield {
        "type": "usage",
        "provider": provider.name,
        "model": final.model or model,
        "prompt_tokens": usage.input_tokens if usage else 0,
        "completion_tokens": usage.output_tokens if usage else 0,
        "first_token_ms": first_token_ms,
        "total_ms": _elapsed_ms(request.started),
        "finish_reason": final.finish_reason or "stop",
    }
