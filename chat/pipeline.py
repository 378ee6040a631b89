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
from django.conf import settings
from django.utils.translation import gettext as _

from chat import prompts
from chat.citations import resolve
from chat.context import Passage, context_window, plan_context
from chat.events import CitationPayload, CitationsEvent, DeltaEvent, SourcesEvent, UsageEvent
from chat.similarity import encoder_similarity
from documents.models import KnowledgeBase
from documents.retrieval import search
from providers.base import (
    ChatMessage,
    ChatRequest,
    Delta,
    SentenceSimilarity,
    SourcePassage,
    apply_delta,
)
from providers.errors import ProviderStreamInterrupted
from providers.offline import extract
from providers.registry import get_provider

DEFAULT_TOP_K = 8
QUOTE_CHARS = 2000
# The weak-passage rule (issue 16, point 5), measured with bench/eval_extractive.py on xquad-ru/en
# (docs/EVALUATION.md, "Extractive answers and the weak-passage signal"): the documents most
# likely do not answer when the best passage given covers less than ANSWER_WEAK_PASSAGE (0.2,
# extract.WEAK_PASSAGE) of the question's keyword weight: that refuses 2.1 % (ru) / 1.5 % (en)
# of the answerable questions and 98 % of those asked of the wrong documents or in the other
# language. A knowledge base embedded by the multilingual e5 sees paraphrases and questions in
# another language that no keyword matches: its best passage at a cosine of at least 0.80 is
# not weak ("retrieved < 0.2 and dense < 0.8" refused 0 answerable questions of 150, ru and en;
# the keyword rule alone 1 of 150 (ru) and 2 (en)). MiniLM's cosines were not measured as a
# signal: for its knowledge bases the keyword rule alone decides.
MULTILINGUAL_ENCODER = "multilingual-e5"  # in the embedding model's name (embeddings.multilingual)
STRONG_DENSE = 0.80
REFUSAL_PASSAGES = 3  # the closest passages a refusal cites
EXCERPT_CHARS = 300  # a longer sentence is cut at a word
# The usage event's finish_reason of an answer that says the documents do not answer (no
# provider was asked); a provider's answers finish "stop", "length", "content_filter" or "other".
NO_ANSWER_FINISH = "no_answer"


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
    encoders = {kb.pk: kb.embedding_model for kb in kbs}
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
            encoder=encoders.get(h.knowledge_base_id, ""),
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


def weak_context(question: str, passages: Sequence[Passage], *, threshold: float) -> bool:
    """Whether ``passages`` (those given to the model) most likely do not answer ``question``:
    there are none, or the best covers less than ``threshold`` of the keyword weight of the
    question's topic (:func:`providers.offline.extract.best_topic_score`: its words less those
    that only ask, such as "tell me", "summarize", "document"; a question with no topic word is
    never weak), unless a passage of a multilingual-e5
    knowledge base has a cosine of at least :data:`STRONG_DENSE` to the question. The figures'
    source is above :data:`MULTILINGUAL_ENCODER`."""
    if not passages:
        return True
    if any(
        MULTILINGUAL_ENCODER in p.encoder
        and p.dense_score is not None
        and p.dense_score >= STRONG_DENSE
        for p in passages
    ):
        return False
    score = extract.best_topic_score(question, [p.text for p in passages])
    # None: only request words ("summarize the document", «о чём этот документ?»), a question
    # about the documents as a whole, which the passages given answer together.
    return score is not None and score < threshold


def _excerpt(question: str, text: str) -> str:
    """The sentence of ``text`` that best covers ``question``'s keywords (the first on a tie or
    when none does), whole unless longer than :data:`EXCERPT_CHARS`."""
    sentences = extract.split_sentences(text) or (" ".join(text.split()),)
    scores = extract.keyword_scores(question, sentences)
    best = sentences[max(range(len(sentences)), key=lambda i: (scores[i], -i))]
    if len(best) <= EXCERPT_CHARS:
        return best
    return best[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"


def refusal_text(question: str, passages: Sequence[Passage]) -> str:
    """What an answer says instead of guessing when the documents do not answer (in the active
    language): that, and the closest :data:`REFUSAL_PASSAGES` passages, each under its ``[n]``
    (so that they are cited like any answer's sources) with a sentence of it."""
    if not passages:
        return _(
            "The documents do not answer this question. None of their passages matches it: "
            "try other words, or check that the right documents are attached."
        )
    lines = [_("The documents do not answer this question. The closest passages:"), ""]
    for number, passage in enumerate(passages[:REFUSAL_PASSAGES], start=1):
        where = passage.title
        if passage.page is not None:
            where = _("%(title)s, p. %(page)s") % {"title": passage.title, "page": passage.page}
        lines.append(f"[{number}] {where}: «{_excerpt(question, passage.text)}»")
        lines.append("")
    return "\n".join(lines).rstrip()


@dataclass(frozen=True)
class _Prepared:
    chat_request: ChatRequest
    passages: tuple[Passage, ...]
    weak: bool = False  # the documents do not answer: no provider is asked (refusal_text)


def _similarity(question: str, passages: Sequence[Passage]) -> SentenceSimilarity | None:
    """The sentence similarity of the encoder of the best passage's knowledge base, for a
    provider that quotes the passages (:mod:`chat.similarity`); None without passages."""
    model_name = next((p.encoder for p in passages if p.encoder), "")
    return encoder_similarity(model_name=model_name, question=question) if model_name else None


async def _prepare(request: AnswerRequest, model: str, *, quotes: bool = False) -> _Prepared:
    """The provider's request and the passages given. ``quotes``: the provider quotes the
    passages itself (the offline one), so it gets the knowledge base's encoder as its sentence
    similarity."""
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
    # On the passages actually given, before any provider is asked (see weak_context).
    weak = (
        rag
        and settings.ANSWER_REFUSE_WEAK
        and weak_context(request.question, chosen, threshold=settings.ANSWER_WEAK_PASSAGE)
    )
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
        similarity=_similarity(request.question, chosen) if quotes and not weak else None,
    )
    return _Prepared(chat_request, chosen, weak)


async def answer_stream(
    request: AnswerRequest,
) -> AsyncGenerator[SourcesEvent | DeltaEvent | CitationsEvent | UsageEvent, None]:
    """Answer ``request``: yields one ``sources`` event (the numbered passages given to the
    model, maybe none), ``delta`` events as the provider streams, then one
    ``citations`` event (only the sources the answer cited) and one ``usage`` event.

    When knowledge bases were searched and the passages given are weak (:func:`weak_context`;
    settings ``ANSWER_REFUSE_WEAK``, ``ANSWER_WEAK_PASSAGE``), no provider is asked: one
    ``delta`` says the documents do not answer and quotes the closest passages
    (:func:`refusal_text`), and the ``usage`` event has ``finish_reason``
    :data:`NO_ANSWER_FINISH` and no tokens.

    Raises ``ProviderError`` (also midway, after some deltas: the caller keeps the partial
    text), ``UnknownProvider``/``ProviderNotConfigured`` before any delta, and
    ``ApplicationError`` from retrieval. Holds no database connection while the provider
    streams. Closing the generator closes the provider's stream.
    """
    provider = get_provider(request.provider)
    model = request.model or provider.default_model
    prepared = await _prepare(
        request, model, quotes=bool(getattr(provider, "quotes_sources", False))
    )
    yield {
        "type": "sources",
        "sources": [citation_payload(n, p) for n, p in enumerate(prepared.passages, start=1)],
    }
    if prepared.weak:
        async for event in _refusal(request, prepared, provider.name, model):
            yield event
        return
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


async def _refusal(
    request: AnswerRequest, prepared: _Prepared, provider: str, model: str
) -> AsyncGenerator[DeltaEvent | CitationsEvent | UsageEvent, None]:
    """The answer when the documents do not answer (see :func:`answer_stream`)."""
    text = refusal_text(request.question, prepared.passages)
    first_token_ms = _elapsed_ms(request.started)
    yield {"type": "delta", "text": text, "replaces": False}
    cited = resolve(text, prepared.passages)
    yield {"type": "citations", "citations": [citation_payload(n, p) for n, p in cited]}
    yield {
        "type": "usage",
        "provider": provider,
        "model": model,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "first_token_ms": first_token_ms,
        "total_ms": _elapsed_ms(request.started),
        "finish_reason": NO_ANSWER_FINISH,
    }
