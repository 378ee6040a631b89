"""The chat over a real daphne: the websocket on the Redis channel layer, and SSE read by a real
HTTP client. The LLM is the loopback OpenAI-compatible fake."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Origin

from chat.models import Message, MessageStatus
from chat.tests.factories import make_conversation
from conftest import running_daphne, subprocess_env
from providers.fakes import OpenAIFake, Script

pytestmark = pytest.mark.redis


@pytest.fixture
def fake() -> Iterator[OpenAIFake]:
    with OpenAIFake() as server:
        yield server


@pytest.fixture
def daphne(
    redis_server: str, transactional_db: None, tmp_path: Path, fake: OpenAIFake
) -> Iterator[int]:
    env = subprocess_env(
        REDIS_URL=redis_server,
        OPENAI_BASE_URL=f"{fake.url}/v1",
        OPENAI_MODEL=fake.models[0],
        LLM_MAX_RETRIES="0",
    )
    with running_daphne(env, tmp_path / "daphne.log") as port:
        yield port


def session_cookie(client: Any, user: Any) -> str:
    client.force_login(user)
    return str(client.cookies["sessionid"].value)


def wait_for_status(message_id: int, timeout: float = 15.0) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = Message.objects.get(pk=message_id)
        if message.status != MessageStatus.STREAMING:
            return message
        time.sleep(0.1)
    raise AssertionError(f"message {message_id} still streaming after {timeout} s")


def test_a_question_over_the_websocket_on_the_redis_layer_is_answered_and_stored(
    daphne, fake, alice, client, kb
):
    fake.script = Script(tokens=["Hello ", "from ", "the ", "fake [1]."])
    conversation = make_conversation(alice, kb, provider="openai")
    cookie = f"sessionid={session_cookie(client, alice)}"
    url = f"ws://127.0.0.1:{daphne}/ws/chat/{conversation.pk}/"

    async def chat() -> list[dict[str, Any]]:
        async with websockets.connect(
            url, additional_headers={"Cookie": cookie}, origin=Origin("http://127.0.0.1")
        ) as ws:
            question = {"type": "send", "content": "When are invoices paid?"}
            await ws.send(json.dumps(question))
            events: list[dict[str, Any]] = []
            while not events or events[-1]["type"] != "done":
                events.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=15)))
            return events

    events = asyncio.run(chat())

    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Hello from the fake [1]."
    assert events[-1]["status"] == "complete"
    message = Message.objects.get(pk=events[-1]["message_id"])
    assert (message.status, message.content, message.provider) == (
        MessageStatus.COMPLETE,
        "Hello from the fake [1].",
        "openai",
    )
    # The server process searches with keywords (this test indexed with the fake encoder).
    cited = [(c.number, c.document_title, c.page) for c in message.citations.all()]
    assert cited == [(1, "Handbook", 1)]


def _sse_request(port: int, cookie: str, conversation_id: int) -> dict[str, Any]:
    csrf = secrets.token_hex(16)
    return {
        "method": "POST",
        "url": f"http://127.0.0.1:{port}/api/v1/conversations/{conversation_id}/messages",
        "json": {"content": "Tell me", "stream": True},
        "headers": {"X-CSRFToken": csrf, "Cookie": f"sessionid={cookie}; csrftoken={csrf}"},
    }


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


def test_sse_read_by_a_real_http_client_streams_deltas_and_stores_the_answer(
    daphne, fake, alice, client
):
    fake.script = Script(tokens=["One ", "two ", "three."], token_delay=0.05)
    conversation = make_conversation(alice, provider="openai")
    cookie = session_cookie(client, alice)

    with httpx.stream(**_sse_request(daphne, cookie, conversation.pk), timeout=15) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        events = list(_events(response.iter_lines()))

    assert [e["type"] for e in events] == [
        "start",
        "sources",
        "delta",
        "delta",
        "delta",
        "citations",
        "usage",
        "done",
    ]
    message = Message.objects.get(pk=events[0]["message_id"])
    assert (message.status, message.content) == (MessageStatus.COMPLETE, "One two three.")


def test_an_sse_client_that_goes_away_does_not_stop_the_answer_from_being_saved(
    daphne, fake, alice, client
):
    tokens = [f"t{i} " for i in range(20)]
    fake.script = Script(tokens=tokens, token_delay=0.05)
    conversation = make_conversation(alice, provider="openai")
    cookie = session_cookie(client, alice)

    with httpx.stream(**_sse_request(daphne, cookie, conversation.pk), timeout=15) as response:
        events = _events(response.iter_lines())
        start = next(events)
        next(e for e in events if e["type"] == "delta")
    # the connection is closed here, after the first token

    message = wait_for_status(start["message_id"])
    assert (message.status, message.content) == (MessageStatus.COMPLETE, "".join(tokens))
