"""Daily quotas: the day's bounds, what counts, the limits and overrides. How the API, the SSE
stream and the websocket deliver a refusal is ``chat/tests/test_quota_refusals.py``'s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import UserQuota
from chat.models import Conversation, Message, MessageStatus, Role
from usage.errors import QuotaExceeded
from usage.models import UsageRecord
from usage.quotas import quota_check, quota_day_bounds, quota_usage_today


def answer(conversation: Conversation, *, prompt: int | None, completion: int | None, **kw: Any):
    fields = {"status": MessageStatus.COMPLETE, **kw}
    created_at = fields.pop("created_at", None)
    message = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="an answer",
        prompt_tokens=prompt,
        completion_tokens=completion,
        **fields,
    )
    if created_at is not None:  # auto_now_add ignores a value given to create()
        Message.objects.filter(pk=message.pk).update(created_at=created_at)
    # What the answer service writes with each finished answer; quotas count these.
    UsageRecord.objects.create(
        user=conversation.owner,
        conversation=conversation,
        message=message,
        provider="offline",
        status=message.status,
        prompt_tokens=prompt or 0,
        completion_tokens=completion or 0,
        created_at=created_at or timezone.now(),
    )
    return message


def test_the_day_runs_from_midnight_to_midnight_in_the_time_zone(settings):
    settings.TIME_ZONE = "Europe/Moscow"  # UTC+3
    now = datetime(2026, 11, 25, 22, 30, tzinfo=UTC)  # 01:30 on the 26th in Moscow

    start, end = quota_day_bounds(now=now)

    assert start == datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 26, 21, 0, tzinfo=UTC)


def test_a_day_with_a_clock_change_is_not_24_hours(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    now = datetime(2026, 10, 25, 12, 0, tzinfo=UTC)  # clocks went back at 03:00 that night

    start, end = quota_day_bounds(now=now)

    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    assert end == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_usage_counts_todays_answers_in_the_users_conversations_except_failed_ones(alice, bob):
    mine = Conversation.objects.create(owner=alice)
    theirs = Conversation.objects.create(owner=bob)
    Message.objects.create(conversation=mine, role=Role.USER, content="a question")
    answer(mine, prompt=100, completion=50)
    answer(mine, prompt=None, completion=None, status=MessageStatus.STOPPED)
    answer(mine, prompt=70, completion=0, status=MessageStatus.FAILED)
    answer(mine, prompt=1000, completion=1000, created_at=timezone.now() - timedelta(days=1))
    answer(theirs, prompt=500, completion=500)

    usage = quota_usage_today(user=alice)

    assert (usage.tokens, usage.messages) == (150, 2)
    assert quota_usage_today(user=bob).tokens == 1000


def test_deleting_a_conversation_does_not_give_the_quota_back(alice):
    conversation = Conversation.objects.create(owner=alice)
    answer(conversation, prompt=100, completion=50)
    conversation.delete()

    usage = quota_usage_today(user=alice)

    assert (usage.tokens, usage.messages) == (150, 1)


@pytest.mark.django_db
def test_without_limits_nothing_is_refused(alice, settings):
    settings.QUOTA_DAILY_TOKENS = settings.QUOTA_DAILY_MESSAGES = 0
    conversation = Conversation.objects.create(owner=alice)
    for _ in range(5):
        answer(conversation, prompt=10_000, completion=10_000)

    quota_check(user=alice)


@pytest.mark.django_db
def test_the_answer_limit_is_refused_saying_which_limit_and_when_it_resets(alice, settings):
    settings.TIME_ZONE = "Europe/Moscow"
    settings.QUOTA_DAILY_MESSAGES = 2
    conversation = Conversation.objects.create(owner=alice)
    answer(conversation, prompt=1, completion=1)
    quota_check(user=alice)  # one of two used
    answer(conversation, prompt=1, completion=1)
    now = datetime(2026, 11, 25, 22, 30, tzinfo=UTC)
    UsageRecord.objects.update(created_at=now - timedelta(minutes=10))

    with pytest.raises(QuotaExceeded) as raised:
        quota_check(user=alice, now=now)

    error = raised.value
    assert "daily limit of 2 answers" in error.message
    assert "2026-11-27 00:00 (Europe/Moscow)" in error.message
    assert error.extra == {
        "code": "quota_exceeded",
        "limit": "messages",
        "limit_value": 2,
        "used": 2,
        "resets_at": "2026-11-27T00:00:00+03:00",
        "retry_after": 22 * 3600 + 30 * 60,
    }


@pytest.mark.django_db
def test_the_token_limit_counts_prompt_and_completion_tokens(alice, settings):
    settings.QUOTA_DAILY_TOKENS = 151
    conversation = Conversation.objects.create(owner=alice)
    answer(conversation, prompt=100, completion=50)
    quota_check(user=alice)  # 150 of 151

    settings.QUOTA_DAILY_TOKENS = 150
    with pytest.raises(QuotaExceeded) as raised:
        quota_check(user=alice)

    assert raised.value.extra["limit"] == "tokens"
    assert raised.value.extra["used"] == 150
    assert "daily limit of 150 tokens (150 used today)" in raised.value.message


@pytest.mark.django_db
def test_a_users_override_wins_over_the_default_and_zero_means_no_limit(alice, bob, settings):
    settings.QUOTA_DAILY_MESSAGES = 1
    settings.QUOTA_DAILY_TOKENS = 0
    for user in (alice, bob):
        answer(Conversation.objects.create(owner=user), prompt=40, completion=0)
    UserQuota.objects.create(user=alice, daily_messages=0, daily_tokens=40)

    with pytest.raises(QuotaExceeded) as raised:  # her own token limit, not the answer default
        quota_check(user=alice)
    assert raised.value.extra["limit"] == "tokens"
    with pytest.raises(QuotaExceeded) as raised:  # the default for him
        quota_check(user=bob)
    assert raised.value.extra["limit"] == "messages"

    UserQuota.objects.filter(user=alice).update(daily_tokens=None)  # back to the default: none
    quota_check(user=alice)


# --- The refusal as each interface delivers it --------------------------------------------------
