"""A question over a daily quota is refused: the API, the SSE stream and the websocket deliver the
typed error, and the conversation stays usable after. (The quotas themselves are
``usage/tests/test_quotas.py``'s.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from accounts.models import UserQuota
from chat.models import Conversation, Message
from chat.routing import websocket_urlpatterns
from usage.tests.test_quotas import answer

API = "/api/v1"


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
