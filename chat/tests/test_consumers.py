from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from chat import services
from chat.models import Message, MessageStatus
from chat.routing import websocket_urlpatterns
from chat.tests.factories import make_conversation
from providers.fakes import Script

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async


def communicator(user: Any, conversation_id: int) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat/{conversation_id}/")
    comm.scope["user"] = user
    return comm


async def receive_until_done(comm: WebsocketCommunicator) -> list[dict[str, Any]]:
    events = []
    while True:
        event = await comm.receive_json_from(timeout=10)
        events.append(event)
        if event["type"] == "done":
            return events


async def test_an_anonymous_user_is_closed_with_4401(alice):
    from django.contrib.auth.models import AnonymousUser

    comm = communicator(AnonymousUser(), 1)
    await comm.connect()

    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_someone_elses_conversation_is_closed_with_4404(alice, bob):
    theirs = await db(make_conversation)(bob)
    comm = communicator(alice, theirs.pk)
    await comm.connect()

    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}


async def test_a_question_streams_typed_events_and_the_cited_sources(alice, kb, openai_fake):
    openai_fake.script = Script(tokens=["Within ", "30 days ", "[1]."])
    conversation = await db(make_conversation)(alice, kb, provider="openai")
    comm = communicator(alice, conversation.pk)
    assert (await comm.connect())[0]

    await comm.send_json_to({"type": "send", "content": "When are invoices paid?"})
    events = await receive_until_done(comm)

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
    assert [(c["number"], c["document_title"], c["page"]) for c in events[5]["citations"]] == [
        (1, "Handbook", 1)
    ]
    message = await db(Message.objects.get)(pk=events[0]["message_id"])
    assert (message.status, message.content) == (MessageStatus.COMPLETE, "Within 30 days [1].")
    await comm.disconnect()


async def test_an_invalid_message_gets_an_error_event_and_the_socket_stays_open(alice):
    conversation = await db(make_conversation)(alice, provider="offline")
    comm = communicator(alice, conversation.pk)
    await comm.connect()

    await comm.send_json_to({"type": "send", "content": 42})
    invalid = await comm.receive_json_from(timeout=5)
    await comm.send_json_to({"type": "dance"})
    unknown = await comm.receive_json_from(timeout=5)
    await comm.send_json_to({"type": "send", "content": "Hello"})
    events = await receive_until_done(comm)

    assert invalid["type"] == "error" and "content" in invalid["message"]
    assert unknown["type"] == "error"
    assert events[-1]["status"] == "complete"
    await comm.disconnect()


async def test_stop_over_the_socket_keeps_the_partial_answer_as_stopped(alice, openai_fake):
    openai_fake.script = Script(tokens=[f"w{i} " for i in range(40)], token_delay=0.05)
    conversation = await db(make_conversation)(alice, provider="openai")
    comm = communicator(alice, conversation.pk)
    await comm.connect()

    await comm.send_json_to({"type": "send", "content": "Long answer please"})
    while (await comm.receive_json_from(timeout=5))["type"] != "delta":
        pass
    await comm.send_json_to({"type": "stop"})
    events = await receive_until_done(comm)

    assert events[-1]["status"] == "stopped"
    message = await db(Message.objects.get)(pk=events[-1]["message_id"])
    assert message.status == MessageStatus.STOPPED
    assert message.content.startswith("w0 ") and len(message.content.split()) < 40
    await comm.disconnect()


async def test_disconnecting_mid_answer_does_not_stop_the_answer_from_being_saved(
    alice, openai_fake
):
    tokens = [f"t{i} " for i in range(10)]
    openai_fake.script = Script(tokens=tokens, token_delay=0.05)
    conversation = await db(make_conversation)(alice, provider="openai")
    comm = communicator(alice, conversation.pk)
    await comm.connect()
    await comm.send_json_to({"type": "send", "content": "Q"})
    start = await comm.receive_json_from(timeout=5)

    await comm.disconnect()
    await services.answer_wait(conversation_id=conversation.pk)

    message = await db(Message.objects.get)(pk=start["message_id"])
    assert (message.status, message.content) == (MessageStatus.COMPLETE, "".join(tokens))


async def test_a_second_send_while_answering_gets_an_error_not_a_second_answer(alice, openai_fake):
    openai_fake.script = Script(tokens=["a ", "b ", "c "], token_delay=0.1)
    conversation = await db(make_conversation)(alice, provider="openai")
    comm = communicator(alice, conversation.pk)
    await comm.connect()
    await comm.send_json_to({"type": "send", "content": "Q1"})
    await comm.receive_json_from(timeout=5)

    await comm.send_json_to({"type": "send", "content": "Q2"})
    events = await receive_until_done(comm)

    errors = [e for e in events if e["type"] == "error"]
    assert errors and "Wait for the answer" in errors[0]["message"]
    assert await db(Message.objects.filter(role="user").count)() == 1
    await comm.disconnect()


async def test_regenerate_over_the_socket_answers_the_last_question_again(alice, openai_fake):
    conversation = await db(make_conversation)(alice, provider="offline")
    comm = communicator(alice, conversation.pk)
    await comm.connect()
    await comm.send_json_to({"type": "send", "content": "Hello"})
    first = await receive_until_done(comm)

    await comm.send_json_to({"type": "regenerate"})
    second = await receive_until_done(comm)

    assert second[0]["user_message_id"] == first[0]["user_message_id"]
    assert second[-1]["message_id"] != first[-1]["message_id"]
    assert await db(Message.objects.count)() == 2
    await comm.disconnect()


async def test_a_client_that_reconnects_mid_answer_gets_the_answer_from_its_start(
    alice, openai_fake
):
    tokens = [f"r{i} " for i in range(10)]
    openai_fake.script = Script(tokens=tokens, token_delay=0.05)
    conversation = await db(make_conversation)(alice, provider="openai")
    first = communicator(alice, conversation.pk)
    await first.connect()
    await first.send_json_to({"type": "send", "content": "Q"})
    while (await first.receive_json_from(timeout=5))["type"] != "delta":
        pass
    await first.disconnect()

    second = communicator(alice, conversation.pk)
    await second.connect()
    events = await receive_until_done(second)

    assert events[0]["type"] == "start"
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "".join(tokens)
    await second.disconnect()


async def test_a_request_refused_before_it_starts_ends_with_error_then_done(alice):
    conversation = await db(make_conversation)(alice, provider="offline")
    comm = communicator(alice, conversation.pk)
    await comm.connect()
    await comm.send_json_to({"type": "regenerate"})
    events = await receive_until_done(comm)
    assert [e["type"] for e in events] == ["error", "done"]
    assert events[0]["message"] == "There is no question to answer again."
    assert events[1] == {"type": "done", "message_id": None, "status": "failed"}
    await comm.disconnect()


async def test_the_grounding_event_follows_done_over_the_socket(alice, kb, openai_fake):
    invented = "The finance director Margaret Thornton signs every invoice by hand."
    openai_fake.script = Script(tokens=["Invoices are paid within 30 days [1]. ", invented])
    conversation = await db(make_conversation)(alice, kb, provider="openai")
    comm = communicator(alice, conversation.pk)
    assert (await comm.connect())[0]

    await comm.send_json_to({"type": "send", "content": "When are invoices paid?"})
    events = await receive_until_done(comm)
    grounding = await comm.receive_json_from(timeout=10)

    message = await db(Message.objects.get)(pk=events[0]["message_id"])
    start = message.content.index(invented)
    assert grounding == {
        "type": "grounding",
        "message_id": message.pk,
        "supported_share": 0.5,
        "unsupported": [{"start": start, "end": start + len(invented)}],
    }
    await comm.disconnect()
