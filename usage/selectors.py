"""Usage analytics: the aggregations the admin's dashboards show (per day, per user, per provider
and model, errors, questions that found no good context), read-only selectors over a date range.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, Count, F, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from documents.models import KnowledgeBase
from usage.models import AnswerStatus, UsageRecord

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


def usage_in_period(*, period: Period) -> QuerySet[UsageRecord]:
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(period.start, dt.time.min, tzinfo=tz)
    until = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return UsageRecord.objects.filter(created_at__gte=since, created_at__lt=until)


_TOTALS: dict[str, Any] = {
    "answers": Count("id"),
    "failed": Count("id", filter=Q(status=AnswerStatus.FAILED)),
    "stopped": Count("id", filter=Q(status=AnswerStatus.STOPPED)),
    "no_good_context": Count("id", filter=Q(no_good_context=True)),
    # Answers that said the documents do not answer (no provider asked).
    "refused": Count("id", filter=Q(refused=True)),
    "prompt_tokens": Coalesce(Sum("prompt_tokens"), 0),
    "completion_tokens": Coalesce(Sum("completion_tokens"), 0),
    "avg_total_ms": Avg("total_ms"),
    "avg_first_token_ms": Avg("first_token_ms"),
    "max_total_ms": Max("total_ms"),
    # The mean share of supported sentences over the answers the grounding check counted.
    "avg_grounded_share": Avg("grounded_share"),
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
    avg_grounded_share: float | None = None
    refused: int = 0

    @property
    def refused_percent(self) -> int | None:
        """The share of the answers that said the documents do not answer, in whole percent
        (None: no answers)."""
        return round(100 * self.refused / self.answers) if self.answers else None

    @property
    def grounded_percent(self) -> int | None:
        """The mean share of supported sentences, in whole percent (None: no answer checked)."""
        share = self.avg_grounded_share
        return None if share is None else round(share * 100)

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
        avg_grounded_share=values.get("avg_grounded_share"),
        refused=values.get("refused") or 0,
    )


def usage_totals(*, period: Period) -> Row:
    return _row("total", usage_in_period(period=period).aggregate(**_TOTALS))


def usage_by_day(*, period: Period) -> list[Row]:
    """One row per day of the period, days without answers included (zeros)."""
    rows = (
        usage_in_period(period=period)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(**_TOTALS)
        .order_by("day")
    )
    found = {r["day"]: r for r in rows}
    empty = dict.fromkeys(_TOTALS, 0) | dict.fromkeys(
        ("avg_total_ms", "avg_first_token_ms", "max_total_ms", "avg_grounded_share")
    )
    return [_row(day.isoformat(), found.get(day, empty)) for day in period.days()]


def usage_by_user(*, period: Period) -> list[Row]:
    """Users by tokens spent, most first; a deleted user's answers as ``(deleted user)``."""
    rows = (
        usage_in_period(period=period)
        .values(name=F("user__username"))
        .annotate(**_TOTALS)
        .order_by()
    )
    found = [_row(r["name"] or _("(deleted user)"), r) for r in rows]
    return sorted(found, key=lambda r: (-r.tokens, -r.answers, r.key))


def usage_by_model(*, period: Period) -> list[Row]:
    """Each provider and model (``provider / model``), most answers first."""
    rows = usage_in_period(period=period).values("provider", "model").annotate(**_TOTALS)
    found = [_row(f"{r['provider']} / {r['model'] or '-'}", r) for r in rows]
    return sorted(found, key=lambda r: (-r.answers, r.key))


def usage_errors(*, period: Period, limit: int = 100) -> QuerySet[UsageRecord]:
    """Failed answers, newest first."""
    return (
        usage_in_period(period=period)
        .filter(status=AnswerStatus.FAILED)
        .select_related("user")
        .order_by("-created_at", "-id")[:limit]
    )


def usage_errors_by_kind(*, period: Period) -> list[tuple[str, int]]:
    rows = (
        usage_in_period(period=period)
        .filter(status=AnswerStatus.FAILED)
        .values_list("error_kind")
        .annotate(n=Count("id"))
        .order_by("-n", "error_kind")
    )
    return [(kind or "-", n) for kind, n in rows]


def usage_no_good_context(*, period: Period, limit: int = 200) -> QuerySet[UsageRecord]:
    """Questions asked of knowledge bases that found no good context (where they are thin),
    the weakest first."""
    return (
        usage_in_period(period=period)
        .filter(no_good_context=True)
        .select_related("user")
        .order_by(F("best_score").asc(nulls_first=True), "-created_at")[:limit]
    )


def with_knowledge_base_names(
    *,
    records: Iterable[UsageRecord],
) -> list[tuple[UsageRecord, list[str]]]:
    """Each record with the names of the knowledge bases it searched (``#id`` for a deleted
    one)."""
    rows = list(records)
    ids = {i for r in rows for i in r.knowledge_base_ids}
    names = dict(KnowledgeBase.objects.filter(pk__in=ids).values_list("pk", "name"))
    return [(r, [names.get(i, f"#{i}") for i in r.knowledge_base_ids]) for r in rows]
