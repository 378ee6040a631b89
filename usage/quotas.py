"""Daily quotas: how many tokens and answers a user may use per day, and the reservation made
before a provider is called.

A day runs from midnight to midnight in ``TIME_ZONE``. Usage is counted from the usage records
of the user's answers: every answer that did not fail counts as one answer, and its prompt and
completion tokens count as tokens. The limits are ``QUOTA_DAILY_TOKENS`` /
``QUOTA_DAILY_MESSAGES``, unless the user has a :class:`UserQuota` row whose field is set; 0 is
no limit.

Questions asked at the same instant cannot pass a limit together: :func:`quota_reserve` checks
the usage and writes the answer's usage record (``streaming``, so it counts from then on) in one
transaction that holds the user's lock, so the reservations of one user are made one after the
other and each sees the ones before. The answer settles its record when it ends (stopped or
complete: kept, with its tokens; failed: it no longer counts), and a question refused after its
reservation gives it back (:func:`quota_release`). The token limit is checked against the tokens
of the answers that have ended: the answers under way when it is reached may pass it by their
own tokens, but no answer starts past it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.models import UserQuota
from usage.errors import QuotaExceeded
from usage.models import AnswerStatus, UsageRecord


@dataclass(frozen=True)
class QuotaLimits:
    """A user's daily limits; 0: no limit."""

    tokens: int
    messages: int


@dataclass(frozen=True)
class QuotaUsage:
    """What a user used since ``day_start``; the count resets at ``resets_at``."""

    tokens: int
    messages: int
    day_start: datetime
    resets_at: datetime


def quota_day_bounds(*, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of today and of tomorrow (midnights in ``TIME_ZONE``, aware) around ``now``."""
    zone = ZoneInfo(settings.TIME_ZONE)
    local = (now or timezone.now()).astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Through a date, not +24 h: a day with a DST change is 23 or 25 hours long.
    tomorrow = (start + timedelta(days=1, hours=12)).date()
    end = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone)
    return start, end


def _counted(prefix: str, day_start: datetime) -> Q:
    """The answers that count against a quota, as a filter on ``prefix`` (a path to
    UsageRecord). Usage records, not messages: they stay when an answer is regenerated or its
    conversation deleted, so deleting does not give a user their quota back."""
    answers = Q(**{f"{prefix}created_at__gte": day_start})
    return answers & ~Q(**{f"{prefix}status": AnswerStatus.FAILED})


def _tokens(prefix: str) -> Any:
    return Coalesce(F(f"{prefix}prompt_tokens"), Value(0)) + Coalesce(
        F(f"{prefix}completion_tokens"), Value(0)
    )


def quota_usage_annotations(*, day_start: datetime) -> dict[str, Any]:
    """Annotations for a ``User`` queryset: ``tokens_today`` and ``messages_today`` since
    ``day_start`` (one query for a whole list, as the admin's)."""
    prefix = "usage_records__"
    counted = _counted(prefix, day_start)
    return {
        "tokens_today": Coalesce(Sum(_tokens(prefix), filter=counted), Value(0)),
        "messages_today": Count("usage_records", filter=counted),
    }


def quota_usage_today(*, user: Any, now: datetime | None = None) -> QuotaUsage:
    """``user``'s usage today (one query)."""
    day_start, resets_at = quota_day_bounds(now=now)
    totals = UsageRecord.objects.filter(_counted("", day_start), user=user).aggregate(
        tokens=Coalesce(Sum(_tokens("")), Value(0)), messages=Count("pk")
    )
    return QuotaUsage(totals["tokens"], totals["messages"], day_start, resets_at)


def quota_limits_for_user(*, user: Any) -> QuotaLimits:
    """``user``'s daily limits: their override where set, else the defaults from settings."""
    return quota_limits_from_override(override=UserQuota.objects.filter(user=user).first())


def quota_limits_from_override(*, override: UserQuota | None) -> QuotaLimits:
    """The limits given a user's override row (None: no row): each field set wins over the
    default from settings."""
    tokens = override.daily_tokens if override is not None else None
    messages = override.daily_messages if override is not None else None
    return QuotaLimits(
        tokens=settings.QUOTA_DAILY_TOKENS if tokens is None else tokens,
        messages=settings.QUOTA_DAILY_MESSAGES if messages is None else messages,
    )


def quota_check(*, user: Any, now: datetime | None = None) -> None:
    """Raise ``QuotaExceeded`` (429) when ``user`` has used up a daily limit: the message says
    which one and when it resets, and ``extra`` carries ``code`` (``quota_exceeded``), ``limit``
    (``tokens`` or ``messages``), ``limit_value``, ``used``, ``resets_at`` (ISO 8601) and
    ``retry_after`` (seconds). It writes nothing and reserves nothing: an answer reserves with
    :func:`quota_reserve`. Without limits it makes one query (the override) and no count."""
    limits = quota_limits_for_user(user=user)
    if limits.tokens or limits.messages:
        _check(limits, quota_usage_today(user=user, now=now), now)


def quota_reserve(
    *,
    user: Any,
    provider: str,
    conversation_id: int | None = None,
    question: str = "",
    now: datetime | None = None,
) -> int | None:
    """Check ``user``'s daily limits as :func:`quota_check` does and reserve one answer: its
    usage record, ``streaming``, counted from now on. Returns the record's id, which the
    answer settles when it ends (``usage.services.usage_record_answer(record_id=...)``) or
    gives back with :func:`quota_release`; None when the user has no limit (nothing to reserve:
    the record is written when the answer ends). Raises ``QuotaExceeded``.

    The check and the write hold the user's lock, so that concurrent reservations of one user
    are made one after the other: on PostgreSQL a lock on the user's row (``FOR NO KEY
    UPDATE``, which does not hold up rows that refer to the user), on SQLite the write lock that
    every transaction takes when it begins (``transaction_mode`` ``IMMEDIATE`` in settings).
    Under READ COMMITTED (Django's default on PostgreSQL) the count, run after the lock is
    granted, sees the reservations committed before."""
    limits = quota_limits_for_user(user=user)
    if not limits.tokens and not limits.messages:
        return None
    with transaction.atomic():
        locked = get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk)
        list(locked.values_list("pk", flat=True))
        _check(limits, quota_usage_today(user=user, now=now), now)
        record = UsageRecord.objects.create(
            user_id=user.pk,
            conversation_id=conversation_id,
            provider=provider,
            status=AnswerStatus.STREAMING,
            question=question,
            created_at=now or timezone.now(),
        )
    return int(record.pk)


def quota_release(*, reservation_id: int | None) -> None:
    """Give back a reservation of :func:`quota_reserve` whose answer never started (the
    question was refused, or never saved); None: nothing reserved."""
    if reservation_id is not None:
        UsageRecord.objects.filter(pk=reservation_id, status=AnswerStatus.STREAMING).delete()


def _check(limits: QuotaLimits, usage: QuotaUsage, now: datetime | None) -> None:
    if limits.messages and usage.messages >= limits.messages:
        raise _exceeded("messages", limits.messages, usage.messages, usage, now)
    if limits.tokens and usage.tokens >= limits.tokens:
        raise _exceeded("tokens", limits.tokens, usage.tokens, usage, now)


def _exceeded(
    kind: str, limit: int, used: int, usage: QuotaUsage, now: datetime | None
) -> QuotaExceeded:
    resets = formats.date_format(usage.resets_at, "Y-m-d H:i")
    values = {"limit": limit, "used": used, "reset": resets, "zone": settings.TIME_ZONE}
    if kind == "tokens":
        message = _(
            "You have used your daily limit of %(limit)s tokens (%(used)s used today). "
            "It resets at %(reset)s (%(zone)s)."
        )
    else:
        message = _(
            "You have used your daily limit of %(limit)s answers. "
            "It resets at %(reset)s (%(zone)s)."
        )
    seconds = (usage.resets_at - (now or timezone.now())).total_seconds()
    return QuotaExceeded(
        message % values,
        {
            "code": "quota_exceeded",
            "limit": kind,
            "limit_value": limit,
            "used": used,
            "resets_at": usage.resets_at.isoformat(),
            "retry_after": max(1, math.ceil(seconds)),
        },
    )
