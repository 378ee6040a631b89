from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from chat import services
from chat.models import Citation, Message, MessageStatus, Role
from chat.services import _answers as answers
from chat.tests.factories import make_conversation, make_indexed_kb
from core.errors import Conflict, InvalidInput, NotFound
from documents.models import Chunk, Document
from providers.fakes import Script
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async


async def ask(user: Any, conversation_id: int, content: str = "", **options: Any) -> list[Any]:
    return [
        e
        async for e in services.message_send(
            user=user, conversation_id=conversation_id, content=content, **options
        )
    ]


def answer_of(events: list[Any]) -> Message:
    start = next(e for e in events if e["type"] == "start")
    return Message.objects.prefetch_related("citations").get(pk=start["message_id"])


def text_of(events: list[Any]) -> str:
    return "".join(e["text"] for e in events if e["type"] == "delta")


async def test_offline_answer_is_stored_complete_with_each_quoted_source_and_its_page(alice, kb):
    conversation = await db(make_conversation)(alice, kb, provider="offline")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    assert [e["type"] for e in events][:2] == ["start", "sources"]
    assert [e["type"] for e in events][-3:] == ["citations", "usage", "done"]
    message = await db(answer_of)(events)
    assert message.status == MessageStatus.COMPLETE and message.content == text_of(events)
    citations = await db(lambda: list(message.citations.order_by("number")))()
    assert citations, "the offline answer quotes every source it was given"
    invoice = await db(Chunk.objects.get)(text__startswith="Invoices are paid")
    cited = {c.chunk_id: c for c in citations}
    assert invoice.pk in cited
    first = cited[invoice.pk]
    assert (first.document_title, first.file_name, first.page) == ("Handbook", "Handbook.pdf", 1)
    assert first.quote == invoice.text and first.score > 0
    assert f"[{first.number}] Handbook, p. 1: «Invoices are paid" in message.content
    contract = [c for c in citations if c.document_title == "Contract"]
    assert all(c.page is None for c in contract)


async def test_only_the_sources_the_answer_cited_are_stored_with_their_number(
    alice, kb, openai_fake
):
    openai_fake.script = Script(tokens=["Within ", "30 days", " [1].", " See also [9]."])
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    sources = next(e for e in events if e["type"] == "sources")["sources"]
    assert len(sources) > 1 and sources[0]["quote"].startswith("Invoices are paid")
    citations = next(e for e in events if e["type"] == "citations")["citations"]
    assert [c["number"] for c in citations] == [1]  # [9] is not a source: ignored
    message = await db(answer_of)(events)
    stored = await db(lambda: list(message.citations.all()))()
    assert [(c.number, c.document_title, c.page) for c in stored] == [(1, "Handbook", 1)]
    assert message.content == "Within 30 days [1]. See also [9]."
    assert (message.provider, message.model) == ("openai", "llama3.2")
    assert message.completion_tokens == 4 and message.prompt_tokens
    assert message.first_token_ms is not None and message.total_ms >= message.first_token_ms


async def test_the_prompt_numbers_the_sources_and_marks_document_text_as_untrusted(
    alice, kb, openai_fake
):
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    await ask(alice, conversation.pk, "When are invoices paid?")

    messages = openai_fake.requests_to("/v1/chat/completions")[0].json()["messages"]
    assert messages[0]["role"] == "system"
    assert "untrusted data" in messages[0]["content"] and "[1]" in messages[0]["content"]
    assert "language of the user's question" in messages[0]["content"]
    question = messages[-1]["content"]
    assert '<source number="1" title="Handbook" page="1">\nInvoices are paid' in question
    assert question.endswith("Question: When are invoices paid?")


async def test_without_a_knowledge_base_it_is_a_plain_chat_with_history(alice, openai_fake):
    conversation = await db(make_conversation)(alice, provider="openai")
    await ask(alice, conversation.pk, "Hello there")

    await ask(alice, conversation.pk, "And again")

    messages = openai_fake.requests_to("/v1/chat/completions")[1].json()["messages"]
    assert "<sources>" not in str(messages)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "Hello there" and messages[-1]["content"] == "And again"


async def test_the_title_comes_from_the_first_question(alice):
    conversation = await db(make_conversation)(alice, provider="offline")

    await ask(alice, conversation.pk, "  How   do I request a vacation?  ")
    await ask(alice, conversation.pk, "Another question")

    await db(conversation.refresh_from_db)()
    assert conversation.title == "How do I request a vacation?"


async def test_stop_mid_stream_keeps_the_partial_answer_as_stopped(alice, kb, openai_fake):
    openai_fake.script = Script(tokens=[f"w{i} " for i in range(40)], token_delay=0.05)
    conversation = await db(make_conversation)(alice, kb, provider="openai")
    events: list[Any] = []

    async for event in services.message_send(
        user=alice, conversation_id=conversation.pk, content="Tell me everything about invoices"
    ):
        events.append(event)
        if event["type"] == "delta" and len([e for e in events if e["type"] == "delta"]) == 3:
            assert await services.answer_stop(user=alice, conversation_id=conversation.pk)

    assert events[-1]["type"] == "done" and events[-1]["status"] == "stopped"
    message = await db(answer_of)(events)
    assert message.status == MessageStatus.STOPPED and message.error == services.STOPPED_REASON
    assert message.content == text_of(events) and message.content.startswith("w0 w1 w2")
    assert len(message.content.split()) < 40
    assert openai_fake.wait_client_closed(5), "the provider's stream was closed"


async def test_provider_error_mid_stream_keeps_the_partial_answer_as_failed_with_reason(
    alice, kb, openai_fake
):
    openai_fake.script = Script(tokens=["Partial ", "answer ", "that ", "breaks"], drop_after=3)
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    error = next(e for e in events if e["type"] == "error")
    assert events[-1] == {"type": "done", "message_id": events[0]["message_id"], "status": "failed"}
    message = await db(answer_of)(events)
    assert message.status == MessageStatus.FAILED and message.content == "Partial answer "
    assert message.error == error["message"] and message.error


async def test_a_provider_that_is_not_configured_fails_the_answer_saying_how_to_configure(
    alice, settings
):
    settings.OPENAI_BASE_URL = ""
    conversation = await db(make_conversation)(alice, provider="openai")

    events = await ask(alice, conversation.pk, "Hi")

    message = await db(answer_of)(events)
    assert message.status == MessageStatus.FAILED and "OPENAI_BASE_URL" in message.error


async def test_a_client_that_goes_away_does_not_stop_the_answer_from_being_saved(
    alice, kb, openai_fake
):
    tokens = [f"t{i} " for i in range(10)]
    openai_fake.script = Script(tokens=tokens, token_delay=0.05)
    conversation = await db(make_conversation)(alice, kb, provider="openai")
    stream = services.message_send(
        user=alice, conversation_id=conversation.pk, content="When are invoices paid?"
    )
    start = await anext(stream)
    async for event in stream:
        if event["type"] == "delta":
            break
    await stream.aclose()  # the browser went away

    await services.answer_wait(conversation_id=conversation.pk)

    assert start["type"] == "start"
    message = await db(Message.objects.get)(pk=start["message_id"])
    assert message.status == MessageStatus.COMPLETE and message.content == "".join(tokens)


async def test_the_answer_is_saved_while_it_streams(alice, openai_fake, monkeypatch):
    monkeypatch.setattr(answers, "SAVE_EVERY", 0.0)
    openai_fake.script = Script(tokens=[f"s{i} " for i in range(8)], token_delay=0.05)
    conversation = await db(make_conversation)(alice, provider="openai")
    seen = ""
    async for event in services.message_send(
        user=alice, conversation_id=conversation.pk, content="Q"
    ):
        if event["type"] == "start":
            message_id = event["message_id"]
        if event["type"] == "delta":
            seen += event["text"]
            if seen.count(" ") == 4:
                saved = await db(Message.objects.get)(pk=message_id)
                assert (saved.status, saved.content) == (MessageStatus.STREAMING, seen)


async def test_a_second_question_while_answering_is_refused(alice, openai_fake):
    openai_fake.script = Script(tokens=["a ", "b ", "c "], token_delay=0.1)
    conversation = await db(make_conversation)(alice, provider="openai")
    first = services.message_send(user=alice, conversation_id=conversation.pk, content="Q1")
    await anext(first)

    with pytest.raises(Conflict):
        await ask(alice, conversation.pk, "Q2")

    await first.aclose()
    await services.answer_wait(conversation_id=conversation.pk)


async def test_regenerate_replaces_the_last_answer_and_records_the_new_provider(alice, openai_fake):
    conversation = await db(make_conversation)(alice, provider="offline")
    first = await ask(alice, conversation.pk, "Hello")

    second = await ask(alice, conversation.pk, regenerate=True, provider="openai")

    rows = await db(lambda: list(Message.objects.filter(conversation=conversation)))()
    assert [(m.role, m.provider) for m in rows] == [(Role.USER, ""), (Role.ASSISTANT, "openai")]
    assert rows[1].pk == second[0]["message_id"] != first[0]["message_id"]


async def test_each_answer_records_the_provider_model_and_parameters_that_produced_it(
    alice, openai_fake
):
    conversation = await db(make_conversation)(alice, provider="offline")
    await ask(alice, conversation.pk, "One")

    await ask(
        alice, conversation.pk, "Two", provider="openai", params={"temperature": 0.7, "top_k": 3}
    )

    answers = await db(lambda: list(Message.objects.filter(role=Role.ASSISTANT)))()
    assert [(a.provider, a.model) for a in answers] == [
        ("offline", "offline-extractive"),
        ("openai", "llama3.2"),
    ]
    assert answers[1].params == {"temperature": 0.7, "max_tokens": None, "top_k": 3}
    sent = openai_fake.requests_to("/v1/chat/completions")[0].json()
    assert sent["temperature"] == 0.7


async def test_a_conversation_restricted_to_documents_cites_only_those(alice, kb, openai_fake):
    openai_fake.script = Script(tokens=["Answer [1][2]."])
    contract = await db(Document.objects.get)(title="Contract")
    conversation = await db(make_conversation)(alice, kb, provider="openai")
    await db(conversation.documents.set)([contract])

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    sources = next(e for e in events if e["type"] == "sources")["sources"]
    assert sources and {s["document_title"] for s in sources} == {"Contract"}


async def test_someone_elses_conversation_is_not_found(alice, bob):
    conversation = await db(make_conversation)(bob, provider="offline")

    with pytest.raises(NotFound):
        await ask(alice, conversation.pk, "Hi")
    with pytest.raises(NotFound):
        await services.answer_stop(user=alice, conversation_id=conversation.pk)


async def test_an_empty_question_is_refused(alice):
    conversation = await db(make_conversation)(alice, provider="offline")

    with pytest.raises(InvalidInput):
        await ask(alice, conversation.pk, "   ")


async def test_citations_survive_the_deletion_of_their_document(alice, kb):
    conversation = await db(make_conversation)(alice, kb, provider="offline")
    events = await ask(alice, conversation.pk, "When are invoices paid?")

    await db(Document.objects.filter(title="Handbook").delete)()

    citation = await db(Citation.objects.get)(message_id=events[0]["message_id"], page=1)
    assert (citation.chunk_id, citation.document_id) == (None, None)
    assert citation.document_title == "Handbook" and citation.quote.startswith("Invoices")


def test_attaching_a_knowledge_base_of_another_user_is_not_found(alice, bob):
    other = make_indexed_kb(bob, "Bob's")

    with pytest.raises(NotFound):
        services.conversation_create(owner=alice, knowledge_base_ids=[other.pk])


def test_a_stale_streaming_answer_of_a_dead_process_is_failed_on_the_next_question(alice):
    conversation = make_conversation(alice, provider="offline")
    stale = Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.STREAMING
    )
    Message.objects.filter(pk=stale.pk).update(updated_at="2020-01-01T00:00:00Z")

    asyncio.run(ask(alice, conversation.pk, "Hi"))

    stale.refresh_from_db()
    assert (stale.status, stale.error) == (MessageStatus.FAILED, services.INTERRUPTED_REASON)


async def test_deleting_a_conversation_mid_answer_stops_it_without_errors(
    alice, openai_fake, caplog
):
    openai_fake.script = Script(tokens=[f"w{i} " for i in range(40)], token_delay=0.05)
    conversation = await db(make_conversation)(alice, provider="openai")
    stream = services.message_send(user=alice, conversation_id=conversation.pk, content="Q")
    while (await anext(stream))["type"] != "delta":
        pass

    await db(services.conversation_delete)(conversation=conversation)
    events: list[Any] = [e async for e in stream]

    assert events[-1]["status"] == "stopped"
    assert not await db(Message.objects.exists)()
    assert "could not be saved" not in caplog.text
    # What was spent still counts for the owner's quota and the analytics.
    records = await db(
        lambda: list(
            UsageRecord.objects.values_list(
                "user_id", "message_id", "status", "provider", "question"
            )
        )
    )()
    assert records == [(alice.pk, None, "stopped", "openai", "Q")]


async def test_an_answer_stopped_by_another_process_notices_at_its_next_save(
    alice, openai_fake, monkeypatch
):
    monkeypatch.setattr(answers, "SAVE_EVERY", 0.0)
    openai_fake.script = Script(tokens=[f"w{i} " for i in range(40)], token_delay=0.05)
    conversation = await db(make_conversation)(alice, provider="openai")
    stream = services.message_send(user=alice, conversation_id=conversation.pk, content="Q")
    start = await anext(stream)
    assert start["type"] == "start"
    while (await anext(stream))["type"] != "delta":
        pass

    # What answer_stop does when the answer runs in another server process.
    assert await db(answers._stop_elsewhere)(conversation.pk) == 1
    events: list[Any] = [e async for e in stream]

    assert events[-1]["status"] == "stopped"
    message = await db(Message.objects.get)(pk=start["message_id"])
    assert message.status == MessageStatus.STOPPED and message.content.startswith("w0 ")
    assert len(message.content.split()) < 40


async def test_a_retrieval_error_fails_the_answer_with_its_reason_and_keeps_the_question(
    alice, kb, monkeypatch
):
    from chat import pipeline

    def broken_search(**kwargs: Any) -> Any:
        raise InvalidInput("The index of this knowledge base is being rebuilt.")

    monkeypatch.setattr(pipeline, "search", broken_search)
    conversation = await db(make_conversation)(alice, kb, provider="offline")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    assert [e["type"] for e in events] == ["start", "error", "done"]
    message = await db(answer_of)(events)
    assert message.status == MessageStatus.FAILED and "being rebuilt" in message.error
    question = await db(Message.objects.get)(pk=events[0]["user_message_id"])
    assert question.content == "When are invoices paid?"


async def test_no_database_connection_is_held_while_the_provider_streams(alice, kb, openai_fake):
    from asgiref.sync import sync_to_async
    from django.db import connection

    openai_fake.script = Script(tokens=[f"w{i} " for i in range(6)], token_delay=0.05)
    conversation = await db(make_conversation)(alice, kb, provider="openai")
    held = []
    async for event in services.message_send(
        user=alice, conversation_id=conversation.pk, content="When are invoices paid?"
    ):
        if event["type"] == "delta":
            # The thread where the service's database calls run, without closing anything.
            held.append(await sync_to_async(lambda: connection.connection is not None)())

    assert held and not any(held)


async def test_the_question_is_saved_while_the_provider_is_already_asked(
    alice, kb, openai_fake, monkeypatch
):
    """The rows are written on the database thread while the provider works on its first token:
    here saving them waits until the fake has received the request, which would never happen
    (5 s) if the provider were asked only after the rows."""
    import threading
    import time

    openai_fake.script = Script(tokens=["Within ", "30 days [1]."], first_token_delay=0.05)
    conversation = await db(make_conversation)(alice, kb, provider="openai")
    real_record = answers._turn_record
    provider_asked_first = threading.Event()

    def record_after_the_request(turn: Any) -> Any:
        deadline = time.monotonic() + 5
        while not openai_fake.requests_to("/v1/chat/completions") and time.monotonic() < deadline:
            time.sleep(0.005)
        if openai_fake.requests_to("/v1/chat/completions"):
            provider_asked_first.set()
        return real_record(turn)

    monkeypatch.setattr(answers, "_turn_record", record_after_the_request)

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    assert provider_asked_first.is_set()
    types = [e["type"] for e in events]
    assert types[:3] == ["start", "sources", "delta"] and types[-2:] == ["done", "grounding"]
    message = await db(answer_of)(events)
    assert message.status == MessageStatus.COMPLETE and message.content == "Within 30 days [1]."
    question = await db(Message.objects.get)(pk=events[0]["user_message_id"])
    assert question.role == Role.USER and question.pk < message.pk
    assert await db(lambda: list(message.citations.values_list("number", flat=True)))() == [1]


async def test_a_conversation_deleted_before_its_question_is_saved_ends_with_an_error(
    alice, openai_fake, monkeypatch
):
    from chat.models import Conversation

    openai_fake.script = Script(tokens=["never ", "shown"], first_token_delay=0.05)
    conversation = await db(make_conversation)(alice, provider="openai")
    real_record = answers._turn_record

    def deleted_first(turn: Any) -> Any:
        Conversation.objects.filter(pk=turn.conversation_id).delete()
        return real_record(turn)

    monkeypatch.setattr(answers, "_turn_record", deleted_first)

    events = await ask(alice, conversation.pk, "Hello?")

    assert [e["type"] for e in events] == ["error", "done"]
    assert "deleted" in events[0]["message"]
    assert events[1] == {"type": "done", "message_id": None, "status": "failed"}
    assert not await db(Message.objects.exists)()
    assert not services.answer_running(conversation_id=conversation.pk)


async def test_stopped_before_its_rows_are_saved_the_answer_is_still_saved_as_stopped(
    alice, openai_fake, monkeypatch
):
    import time

    openai_fake.script = Script(tokens=[f"w{i} " for i in range(20)], token_delay=0.05)
    conversation = await db(make_conversation)(alice, provider="openai")
    real_record = answers._turn_record

    def slow_record(turn: Any) -> Any:
        time.sleep(0.3)
        return real_record(turn)

    monkeypatch.setattr(answers, "_turn_record", slow_record)
    collecting = asyncio.create_task(ask(alice, conversation.pk, "Q"))
    await asyncio.sleep(0.1)  # the rows are being saved
    assert await services.answer_stop(user=alice, conversation_id=conversation.pk)

    events = await collecting

    assert events[0]["type"] == "start" and events[-1]["status"] == "stopped"
    message = await db(answer_of)(events)
    assert message.status == MessageStatus.STOPPED
    question = await db(Message.objects.get)(pk=events[0]["user_message_id"])
    assert question.content == "Q"


def test_an_answer_still_streaming_in_another_process_refuses_the_next_question(alice):
    conversation = make_conversation(alice, provider="offline")
    live = Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.STREAMING
    )

    with pytest.raises(Conflict):
        asyncio.run(ask(alice, conversation.pk, "Hi"))

    live.refresh_from_db()
    assert live.status == MessageStatus.STREAMING
    assert list(Message.objects.filter(conversation=conversation)) == [live]
