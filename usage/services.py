"""Recording usage: one :class:`~usage.models.UsageRecord` per answer, written when the answer
ends (:func:`usage_record_answer`); for a user with a daily limit the record was written when the
answer started (the quota's reservation, :func:`usage.quotas.quota_reserve`) and is settled here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from usage.models import UsageRecord


class Scored(Protocol):
    """A retrieved passage as usage sees it: its dense (cosine) score, if it has one."""

    @property
    def dense_score(self) -> float | None: ...


@dataclass(frozen=True)
class Retrieval:
    """What retrieval found for an answer: ``passages`` None when it is not known (the early
    retrieval failed and the pipeline retrieved again while streaming)."""

    passages: int | None
    best_score: float | None


def retrieval_of(*, passages: Sequence[Scored] | None) -> Retrieval:
    if passages is None:
        return Retrieval(None, None)
    scores = [p.dense_score for p in passages if p.dense_score is not None]
    return Retrieval(len(passages), max(scores) if scores else None)


def good_context_threshold() -> float:
    return float(settings.USAGE_GOOD_CONTEXT_SCORE)


def no_good_context(*, knowledge_base_ids: Sequence[int], retrieval: Retrieval) -> bool:
    """Knowledge bases were searched and found nothing, or nothing scoring at least
    ``USAGE_GOOD_CONTEXT_SCORE`` (the best dense cosine)."""
    if not knowledge_base_ids or retrieval.passages is None:
        return False
    if retrieval.passages == 0:
        return True
    best = retrieval.best_score
    return best is not None and best < good_context_threshold()


def usage_record_answer(
    *,
    record_id: int | None = None,
    message_id: int | None,
    conversation_id: int | None,
    user_id: int | None,
    provider: str,
    model: str,
    status: str,
    error_kind: str = "",
    error: str = "",
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    first_token_ms: int | None = None,
    total_ms: int = 0,
    knowledge_base_ids: Sequence[int] = (),
    question: str = "",
    retrieval: Retrieval = Retrieval(None, None),
    refused: bool = False,
) -> UsageRecord:
    """Record (or, for the same message, replace) the usage of one finished answer;
    ``message_id`` None: its message is gone (the conversation was deleted mid-answer).
    ``refused``: the answer said the documents do not answer (``chat.pipeline.weak_context``, a
    keyword signal that the dense cosine of :func:`no_good_context` does not see); it is then
    also recorded as having found no good context.
    ``record_id``: the answer's reservation, settled with these values (it keeps its time, the
    question's, so that the answer counts on the day it was asked)."""
    values = {
        "conversation_id": conversation_id,
        "user_id": user_id,
        "provider": provider,
        "model": model,
        "status": status,
        "error_kind": error_kind[:100],
        "error": error,
        "prompt_tokens": max(prompt_tokens, 0),
        "completion_tokens": max(completion_tokens, 0),
        "first_token_ms": first_token_ms,
        "total_ms": max(total_ms, 0),
        "knowledge_base_ids": sorted(knowledge_base_ids),
        "question": question,
        "passages_retrieved": retrieval.passages,
        "best_score": retrieval.best_score,
        "no_good_context": refused
        or no_good_context(knowledge_base_ids=knowledge_base_ids, retrieval=retrieval),
        "refused": refused,
    }
    if record_id is not None:
        values["message_id"] = message_id
        record, _created = UsageRecord.objects.update_or_create(pk=record_id, defaults=values)
        return record
    if message_id is None:
        return UsageRecord.objects.create(**values)
    record, _created = UsageRecord.objects.update_or_create(message_id=message_id, defaults=values)
    return record


def usage_record_grounding(*, message_id: int, grounded_share: float | None) -> int:
    """Record the share of supported sentences of the answer ``message_id`` (the grounding
    check, run once the answer is saved). Returns the number of records updated (0: none, e.g.
    the conversation was deleted meanwhile)."""
    return UsageRecord.objects.filter(message_id=message_id).update(grounded_share=grounded_share)
