"""The grounding check wired into the answers (issue 16, point 4): run once a complete answer is
saved, stored on its message and its share on its usage record, sent as a ``grounding`` event
after ``done``, and returned by the message API."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from chat import grounding, services
from chat.models import Message, MessageStatus
from chat.tests.factories import make_conversation
from providers.fakes import Script
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async

SUPPORTED = "Invoices are paid within 30 days of receipt by bank transfer [1]."
INVENTED = "The finance director Margaret Thornton signs every invoice by hand."
PLANTED = f"{SUPPORTED} {INVENTED}"


async def ask(user: Any, conversation_id: int, content: str) -> list[Any]:
    return [
        e
        async for e in services.message_send(
            user=user, conversation_id=conversation_id, content=content
        )
    ]


def _message(events: list[Any]) -> Message:
    start = next(e for e in events if e["type"] == "start")
    return Message.objects.get(pk=start["message_id"])


async def test_an_answer_with_an_invented_sentence_stores_its_span_and_share(
    alice, kb, openai_fake
):
    openai_fake.script = Script(tokens=[SUPPORTED, " ", INVENTED])
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    message = await db(_message)(events)
    assert message.status == MessageStatus.COMPLETE and message.content == PLANTED
    start = PLANTED.index(INVENTED)
    assert message.grounding == {
        "supported_share": 0.5,
        "counted": 2,
        "supported": 1,
        "unsupported": [{"start": start, "end": start + len(INVENTED)}],
    }
    record = await db(UsageRecord.objects.get)(message_id=message.pk)
    assert record.grounded_share == 0.5


async def test_a_supported_answer_stores_a_share_of_one(alice, kb, openai_fake):
    openai_fake.script = Script(tokens=[SUPPORTED])
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    message = await db(_message)(events)
    assert message.grounding["supported_share"] == 1.0
    assert message.grounding["unsupported"] == []
    record = await db(UsageRecord.objects.get)(message_id=message.pk)
    assert record.grounded_share == 1.0


async def test_the_grounding_event_follows_done_with_the_unsupported_spans(alice, kb, openai_fake):
    openai_fake.script = Script(tokens=[SUPPORTED, " ", INVENTED])
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    assert [e["type"] for e in events][-2:] == ["done", "grounding"]
    message = await db(_message)(events)
    start = PLANTED.index(INVENTED)
    assert events[-1] == {
        "type": "grounding",
        "message_id": message.pk,
        "supported_share": 0.5,
        "unsupported": [{"start": start, "end": start + len(INVENTED)}],
    }


async def test_the_message_is_saved_before_the_check_runs(alice, kb, openai_fake, monkeypatch):
    """The check does not delay the message: it is complete in the database when the check
    starts, and the ``done`` event is already out."""
    openai_fake.script = Script(tokens=[SUPPORTED])
    conversation = await db(make_conversation)(alice, kb, provider="openai")
    seen: list[Any] = []
    check = grounding.check

    def spying_check(**kwargs: Any) -> Any:
        seen.append(list(Message.objects.filter(role="assistant").values_list("status", "content")))
        return check(**kwargs)

    monkeypatch.setattr(grounding, "check", spying_check)

    await ask(alice, conversation.pk, "When are invoices paid?")

    assert seen == [[(MessageStatus.COMPLETE, SUPPORTED)]]


async def test_no_check_for_an_answer_given_no_passages(alice, openai_fake):
    openai_fake.script = Script(tokens=[INVENTED])
    conversation = await db(make_conversation)(alice, provider="openai")

    events = await ask(alice, conversation.pk, "Who signs invoices?")

    assert events[-1]["type"] == "done"
    message = await db(_message)(events)
    assert message.grounding is None
    record = await db(UsageRecord.objects.get)(message_id=message.pk)
    assert record.grounded_share is None


async def test_a_failing_check_leaves_the_answer_complete(alice, kb, openai_fake, monkeypatch):
    openai_fake.script = Script(tokens=[SUPPORTED])
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(grounding, "check", broken)

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    assert events[-1] == {
        "type": "done",
        "message_id": events[0]["message_id"],
        "status": "complete",
    }
    message = await db(_message)(events)
    assert message.status == MessageStatus.COMPLETE and message.grounding is None


async def test_no_check_for_the_offline_providers_quotes(alice, kb):
    """The offline provider quotes the passages: its framing would be flagged, its quotes are
    grounded by construction."""
    conversation = await db(make_conversation)(alice, kb, provider="offline")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    assert events[-1]["type"] == "done"
    message = await db(_message)(events)
    assert "Invoices are paid" in message.content and message.grounding is None
