"""Daily quotas: the day's bounds, what counts, the limits and overrides, and the refusal as the
API, the SSE stream and the websocket deliver it, with the conversation still usable after."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from accounts.models import UserQuota
from chat.models import Conversation, Message, MessageStatus, Role
from chat.routing import websocket_urlpatterns
from usage.errors import QuotaExceeded
from usage.models import UsageRecord
from usage.quotas import quota_check, quota_day_bounds, quota_usage_today

API = "/api/v1"


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


def _post(client: Any, conversation: Conversation, **data: Any) -> Any:
    return client.post(
        f"{API}/conversations/{conversation.pk}/messages",
        {"content": "When are invoices paid?", **data},
        content_type="application/json",
    )


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_429_with_the_limit_and_the_conversation_stays_usable(
    alice_client, alice, settings
):
    settings.QUOTA_DAILY_MESSAGES = 1
    conversation = Conversation.objects.create(owner=alice, provider="offline")
    assert _post(alice_client, conversation).status_code == 200  # the day's one answer
    before = Message.objects.count()

    response = _post(alice_client, conversation)

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "quota_exceeded" and body["limit"] == "messages"
    assert "daily limit of 1 answers" in body["detail"]
    assert response["Retry-After"] == str(body["retry_after"])
    assert 0 < body["retry_after"] <= 24 * 3600
    assert Message.objects.count() == before  # neither the question nor an answer was saved

    UserQuota.objects.create(user=alice, daily_messages=2)
    again = _post(alice_client, conversation)
    assert again.status_code == 200, again.content
    assert again.json()["status"] == "complete"


@pytest.mark.django_db(transaction=True)
async def test_the_event_stream_ends_with_a_typed_quota_error_and_done(
    async_client, alice, settings
):
    settings.QUOTA_DAILY_TOKENS = 10
    db = database_sync_to_async
    conversation = await db(Conversation.objects.create)(owner=alice, provider="offline")
    await db(answer)(conversation, prompt=8, completion=2)
    await async_client.aforce_login(alice)

    response = await async_client.post(
        f"{API}/conversations/{conversation.pk}/messages",
        {"content": "When are invoices paid?", "stream": True},
        content_type="application/json",
    )

    assert response.status_code == 200
    body = "".join([c.decode() async for c in response.streaming_content])
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["error", "done"]
    assert events[0]["code"] == "quota_exceeded"
    assert events[0]["details"]["limit"] == "tokens"
    assert events[0]["details"]["limit_value"] == 10
    assert "daily limit of 10 tokens" in events[0]["message"]
    assert events[1] == {"type": "done", "message_id": None, "status": "failed"}
    assert await Message.objects.filter(conversation=conversation).acount() == 1


async def _until_done(comm: WebsocketCommunicator) -> list[dict[str, Any]]:
    events = []
    while True:
        events.append(await comm.receive_json_from(timeout=10))
        if events[-1]["type"] == "done":
            return events


@pytest.mark.django_db(transaction=True)
async def test_the_websocket_gets_a_typed_quota_error_and_can_ask_again_when_raised(
    alice, settings
):
    settings.QUOTA_DAILY_MESSAGES = 1
    db = database_sync_to_async
    conversation = await db(Conversation.objects.create)(owner=alice, provider="offline")
    await db(answer)(conversation, prompt=1, completion=1)
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat/{conversation.pk}/")
    comm.scope["user"] = alice
    assert (await comm.connect())[0]

    await comm.send_json_to({"type": "send", "content": "When are invoices paid?"})
    refused = await _until_done(comm)

    assert [e["type"] for e in refused] == ["error", "done"]
    assert refused[0]["code"] == "quota_exceeded"
    assert refused[0]["details"]["limit"] == "messages"
    assert "resets at" in refused[0]["message"]
    assert refused[1]["status"] == "failed"

    await db(UserQuota.objects.create)(user=alice, daily_messages=0)
    await comm.send_json_to({"type": "send", "content": "When are invoices paid?"})
    answered = await _until_done(comm)

    assert answered[0]["type"] == "start"
    assert answered[-1]["status"] == "complete"
    await comm.disconnect()
