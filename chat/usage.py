"""Usage analytics: one :class:`~chat.models.UsageRecord` per answer, and the aggregations the
admin's dashboards show (per day, per user, per provider and model, errors, questions that found
no good context) and export as CSV.

:func:`usage_record_answer` writes a record when an answer is saved for the last time; for a user
with a daily limit the record was written when the answer started (the quota's reservation,
``accounts.quotas.quota_reserve``) and is settled here. The rest are read-only selectors over a
date range.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, F, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from chat.context import Passage
from chat.models import MessageStatus, UsageRecord
from documents.models import KnowledgeBase

# --- writing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retrieval:
    """What retrieval found for an answer: ``passages`` None when it is not known (the early
    retrieval failed and the pipeline retrieved again while streaming)."""

    passages: int | None
    best_score: float | None


def retrieval_of(passages: Sequence[Passage] | None) -> Retrieval:
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
) -> UsageRecord:
    """Record (or, for the same message, replace) the usage of one finished answer;
    ``message_id`` None: its message is gone (the conversation was deleted mid-answer).
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
        "no_good_context": no_good_context(
            knowledge_base_ids=knowledge_base_ids, retrieval=retrieval
        ),
    }
    if record_id is not None:
        values["message_id"] = message_id
        record, _created = UsageRecord.objects.update_or_create(pk=record_id, defaults=values)
        return record
    if message_id is None:
        return UsageRecord.objects.create(**values)
    record, _created = UsageRecord.objects.update_or_create(message_id=message_id, defaults=values)
    return record


# --- reading -----------------------------------------------------------------------------------


MAX_DAYS = 366  # the longest range a dashboard shows (one bar per day)


@dataclass(frozen=True)
class Period:
    """Days ``start`` to ``end``, both included, in the current time zone."""

    start: dt.date
    end: dt.date

    @classmethod
    def last_days(cls, days: int = 30, *, today: dt.date | None = None) -> Period:
        today = today or timezone.localdate()
        return cls(today - dt.timedelta(days=days - 1), today)

    @classmethod
    def parse(cls, start: str | None, end: str | None, *, default_days: int = 30) -> Period:
        """From ``YYYY-MM-DD`` strings; a missing or malformed one takes the default range's;
        swapped dates are put in order; a range longer than ``MAX_DAYS`` keeps its last days."""
        fallback = cls.last_days(default_days)
        first = _parse_date(start) or fallback.start
        last = _parse_date(end) or fallback.end
        first, last = min(first, last), max(first, last)
        return cls(max(first, last - dt.timedelta(days=MAX_DAYS - 1)), last)

    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def _parse_date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def usage_in_period(period: Period) -> QuerySet[UsageRecord]:
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(period.start, dt.time.min, tzinfo=tz)
    until = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return UsageRecord.objects.filter(created_at__gte=since, created_at__lt=until)


_TOTALS: dict[str, Any] = {
    "answers": Count("id"),
    "failed": Count("id", filter=Q(status=MessageStatus.FAILED)),
    "stopped": Count("id", filter=Q(status=MessageStatus.STOPPED)),
    "no_good_context": Count("id", filter=Q(no_good_context=True)),
    "prompt_tokens": Coalesce(Sum("prompt_tokens"), 0),
    "completion_tokens": Coalesce(Sum("completion_tokens"), 0),
    "avg_total_ms": Avg("total_ms"),
    "avg_first_token_ms": Avg("first_token_ms"),
    "max_total_ms": Max("total_ms"),
}


@dataclass(frozen=True)
class Row:
    """One line of a breakdown: its ``key`` (a day, a user, a provider and model), and sums."""

    key: str
    answers: int
    failed: int
    stopped: int
    no_good_context: int
    prompt_tokens: int
    completion_tokens: int
    avg_total_ms: int | None
    avg_first_token_ms: int | None
    max_total_ms: int | None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def error_rate(self) -> float:
        return self.failed / self.answers if self.answers else 0.0


def _row(key: str, values: dict[str, Any]) -> Row:
    def whole(name: str) -> int | None:
        value = values.get(name)
        return None if value is None else round(value)

    return Row(
        key=key,
        answers=values["answers"],
        failed=values["failed"],
        stopped=values["stopped"],
        no_good_context=values["no_good_context"],
        prompt_tokens=values["prompt_tokens"],
        completion_tokens=values["completion_tokens"],
        avg_total_ms=whole("avg_total_ms"),
        avg_first_token_ms=whole("avg_first_token_ms"),
        max_total_ms=whole("max_total_ms"),
    )


def usage_totals(period: Period) -> Row:
    return _row("total", usage_in_period(period).aggregate(**_TOTALS))


def usage_by_day(period: Period) -> list[Row]:
    """One row per day of the period, days without answers included (zeros)."""
    rows = (
        usage_in_period(period)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(**_TOTALS)
        .order_by("day")
    )
    found = {r["day"]: r for r in rows}
    empty = dict.fromkeys(_TOTALS, 0) | dict.fromkeys(
        ("avg_total_ms", "avg_first_token_ms", "max_total_ms")
    )
    return [_row(day.isoformat(), found.get(day, empty)) for day in period.days()]


def usage_by_user(period: Period) -> list[Row]:
    """Users by tokens spent, most first; a deleted user's answers as ``(deleted user)``."""
    rows = usage_in_period(period).values(name=F("user__username")).annotate(**_TOTALS).order_by()
    found = [_row(r["name"] or _("(deleted user)"), r) for r in rows]
    return sorted(found, key=lambda r: (-r.tokens, -r.answers, r.key))


def usage_by_model(period: Period) -> list[Row]:
    """Each provider and model (``provider / model``), most answers first."""
    rows = usage_in_period(period).values("provider", "model").annotate(**_TOTALS)
    found = [_row(f"{r['provider']} / {r['model'] or '-'}", r) for r in rows]
    return sorted(found, key=lambda r: (-r.answers, r.key))


def usage_errors(period: Period, *, limit: int = 100) -> QuerySet[UsageRecord]:
    """Failed answers, newest first."""
    return (
        usage_in_period(period)
        .filter(status=MessageStatus.FAILED)
        .select_related("user")
        .order_by("-created_at", "-id")[:limit]
    )


def usage_errors_by_kind(period: Period) -> list[tuple[str, int]]:
    rows = (
        usage_in_period(period)
        .filter(status=MessageStatus.FAILED)
        .values_list("error_kind")
        .annotate(n=Count("id"))
        .order_by("-n", "error_kind")
    )
    return [(kind or "-", n) for kind, n in rows]


def usage_no_good_context(period: Period, *, limit: int = 200) -> QuerySet[UsageRecord]:
    """Questions asked of knowledge bases that found no good context (where they are thin),
    the weakest first."""
    return (
        usage_in_period(period)
        .filter(no_good_context=True)
        .select_related("user")
        .order_by(F("best_score").asc(nulls_first=True), "-created_at")[:limit]
    )


def with_knowledge_base_names(
    records: Iterable[UsageRecord],
) -> list[tuple[UsageRecord, list[str]]]:
    """Each record with the names of the knowledge bases it searched (``#id`` for a deleted
    one)."""
    rows = list(records)
    ids = {i for r in rows for i in r.knowledge_base_ids}
    names = dict(KnowledgeBase.objects.filter(pk__in=ids).values_list("pk", "name"))
    return [(r, [names.get(i, f"#{i}") for i in r.knowledge_base_ids]) for r in rows]


# --- CSV ---------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "id",
    "created_at",
    "user",
    "provider",
    "model",
    "status",
    "error_kind",
    "prompt_tokens",
    "completion_tokens",
    "first_token_ms",
    "total_ms",
    "knowledge_base_ids",
    "passages_retrieved",
    "best_score",
    "no_good_context",
    "question",
)


def _cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    """A file-like object whose ``write`` returns the line, for a streaming CSV writer."""

    def write(self, value: str) -> str:
        return value


def usage_csv_lines(records: Iterable[UsageRecord]) -> Iterator[str]:
    """The records as CSV lines (a header first), for a streaming response."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for r in records:
        yield writer.writerow(
            (
                r.pk,
                r.created_at.isoformat(),
                _cell(r.user.get_username()) if r.user else "",
                r.provider,
                r.model,
                r.status,
                r.error_kind,
                r.prompt_tokens,
                r.completion_tokens,
                "" if r.first_token_ms is None else r.first_token_ms,
                r.total_ms,
                " ".join(str(i) for i in r.knowledge_base_ids),
                "" if r.passages_retrieved is None else r.passages_retrieved,
                "" if r.best_score is None else f"{r.best_score:.4f}",
                int(r.no_good_context),
                _cell(r.question),
            )
        )


def usage_csv_records(period: Period) -> Iterator[UsageRecord]:
    return (
        usage_in_period(period).select_related("user").order_by("created_at", "id").iterator(2000)
    )
