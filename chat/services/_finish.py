"""Finishing an answer: its message, citations and conversation written in one transaction; once
committed, the metrics count it and the usage app records it (settling the quota's reservation).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from chat.citations import resolve
from chat.events import CitationPayload, UsageEvent
from chat.models import Citation, Conversation, Message, MessageStatus
from chat.pipeline import NO_ANSWER_FINISH
from core.metrics import record_answer
from documents.models import Chunk, Document
from usage.services import retrieval_of, usage_record_answer

if TYPE_CHECKING:
    from chat.services._turns import _Turn


@dataclass
class _Outcome:
    text: str = ""
    status: str = MessageStatus.COMPLETE
    error: str = ""
    sources: list[CitationPayload] = field(default_factory=list)
    citations: list[CitationPayload] | None = None
    usage: UsageEvent | None = None
    first_token_ms: int | None = None
    error_kind: str = ""  # the exception's class name, "stopped", or empty


def _existing(model: type[Chunk] | type[Document], ids: Iterable[int | None]) -> set[int]:
    return set(model.objects.filter(pk__in={i for i in ids if i}).values_list("pk", flat=True))


@dataclass(frozen=True)
class _Finished:
    """A finished answer as its usage is recorded: ``message_id`` and ``conversation_id`` None
    when the conversation was deleted meanwhile (what was spent still counts: quotas)."""

    message_id: int | None
    conversation_id: int | None
    provider: str
    model: str
    total_ms: int


def _message_update(message_id: int, outcome: _Outcome, turn: _Turn) -> _Finished:
    request, usage = turn.request, outcome.usage
    total_ms = usage["total_ms"] if usage else int((time.monotonic() - request.started) * 1000)
    fields: dict[str, Any] = {
        "content": outcome.text,
        "status": outcome.status,
        "error": outcome.error,
        "first_token_ms": outcome.first_token_ms,
        "total_ms": total_ms,
        "finish_reason": "",  # set below from the finish, if the answer got one
        "updated_at": timezone.now(),
    }
    if usage:
        fields.update(
            model=usage["model"],
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            finish_reason=usage["finish_reason"][:20],
        )
    if not Message.objects.filter(pk=message_id).update(**fields):
        model = usage["model"] if usage else request.model
        return _Finished(None, None, request.provider, model, total_ms)
    provider, model, conversation_id = Message.objects.filter(pk=message_id).values_list(
        "provider", "model", "conversation_id"
    )[0]
    return _Finished(message_id, conversation_id, provider, model, total_ms)


def _citations_replace(message_id: int, outcome: _Outcome) -> None:
    cited = outcome.citations
    if cited is None:  # stopped or failed: the sources the partial text cited so far
        cited = [c for _, c in resolve(outcome.text, outcome.sources)]
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


def _answer_counted(finished: _Finished, outcome: _Outcome, turn: _Turn) -> None:
    """Count the answer in the metrics and record its usage (settling its reservation)."""
    request, usage = turn.request, outcome.usage
    prompt_tokens = usage["prompt_tokens"] if usage else 0
    completion_tokens = usage["completion_tokens"] if usage else 0
    record_answer(
        finished.provider,
        finished.model,
        outcome.status,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        first_token_ms=outcome.first_token_ms,
    )
    usage_record_answer(
        record_id=turn.reservation_id,
        message_id=finished.message_id,
        conversation_id=finished.conversation_id,
        user_id=turn.user_id,
        provider=finished.provider,
        model=finished.model,
        status=outcome.status,
        error_kind=outcome.error_kind,
        error=outcome.error,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        first_token_ms=outcome.first_token_ms,
        total_ms=finished.total_ms,
        knowledge_base_ids=request.knowledge_base_ids,
        question=request.question,
        retrieval=retrieval_of(passages=request.passages),
        refused=usage is not None and usage["finish_reason"] == NO_ANSWER_FINISH,
    )


def message_finish(*, message_id: int, outcome: _Outcome, turn: _Turn) -> None:
    """Finish an answer: its message (text, status, timings, tokens), its citations and its
    conversation's time in one transaction; once committed, the metrics count it and its usage
    is recorded (the quota's reservation settled). A message gone meanwhile (its conversation
    was deleted) is not written, but its usage still is."""
    with transaction.atomic():
        finished = _message_update(message_id, outcome, turn)
        if finished.message_id is not None:
            _citations_replace(message_id, outcome)
            Conversation.objects.filter(messages__pk=message_id).update(updated_at=timezone.now())
        transaction.on_commit(functools.partial(_answer_counted, finished, outcome, turn))
