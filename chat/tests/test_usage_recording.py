"""What an answer records for usage analytics: a record per answer (offline, the
OpenAI-compatible fake, failures), the no-good-context flag and the no-good-context list it feeds;
and the read-only conversations admin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from chat import services
from chat.models import Conversation, Message, MessageStatus, Role
from chat.pipeline import AnswerRequest
from chat.services import _answers as answers
from chat.services._finish import _Outcome, message_finish
from chat.tests.factories import index_document, make_conversation
from documents.retrieval.tests.factories import make_kb
from providers.fakes import GigaChatFake, Script, YandexFake
from usage.models import UsageRecord

db = database_sync_to_async


async def ask(user: Any, conversation_id: int, content: str) -> list[Any]:
    return [
        e
        async for e in services.message_send(
            user=user, conversation_id=conversation_id, content=content
        )
    ]


def message_id_of(events: list[Any]) -> int:
    return int(next(e for e in events if e["type"] == "start")["message_id"])


def record_of(events: list[Any]) -> UsageRecord:
    return UsageRecord.objects.select_related("user").get(message_id=message_id_of(events))


# --- recording -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_an_offline_answer_records_its_user_provider_tokens_timings_and_knowledge_bases(
    alice, kb
):
    conversation = await db(make_conversation)(alice, kb, provider="offline")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    usage = next(e for e in events if e["type"] == "usage")
    record = await db(record_of)(events)
    assert record.user == alice and record.conversation_id == conversation.pk
    assert (record.provider, record.model) == ("offline", "offline-extractive")
    assert record.status == MessageStatus.COMPLETE and record.error_kind == ""
    assert (record.prompt_tokens, record.completion_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert record.prompt_tokens > 0 and record.completion_tokens > 0
    assert record.total_ms == usage["total_ms"]
    assert record.first_token_ms == usage["first_token_ms"] is not None
    assert record.knowledge_base_ids == [kb.pk]
    assert record.question == "When are invoices paid?"
    assert record.passages_retrieved and record.passages_retrieved > 0
    assert record.best_score is not None and record.best_score >= 0.3
    assert record.no_good_context is False


@pytest.mark.django_db(transaction=True)
async def test_an_answer_through_the_openai_fake_records_the_tokens_the_server_reported(
    alice, kb, openai_fake
):
    openai_fake.script = Script(tokens=["Within ", "30 days", " [1]."])
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    record = await db(record_of)(events)
    message = await db(Message.objects.get)(pk=message_id_of(events))
    assert (record.provider, record.model) == ("openai", "llama3.2")
    assert record.completion_tokens == 3 == message.completion_tokens
    assert record.prompt_tokens == message.prompt_tokens and record.prompt_tokens > 0
    assert record.status == MessageStatus.COMPLETE and record.knowledge_base_ids == [kb.pk]


@pytest.fixture
def cloud_fake(request: Any, settings: Any) -> Iterator[tuple[str, Any]]:
    """The GigaChat or Yandex loopback fake as its provider."""
    settings.LLM_MAX_RETRIES = 0
    if request.param == "gigachat":
        with GigaChatFake() as fake:
            settings.GIGACHAT_CREDENTIALS = fake.credentials
            settings.GIGACHAT_AUTH_URL = fake.auth_url
            settings.GIGACHAT_BASE_URL = fake.base_url
            settings.GIGACHAT_SCOPE = "GIGACHAT_API_PERS"
            yield "gigachat", fake
    else:
        with YandexFake() as fake:
            settings.YANDEX_API_KEY = fake.api_key
            settings.YANDEX_IAM_TOKEN = ""
            settings.YANDEX_FOLDER_ID = fake.folder_id
            settings.YANDEX_BASE_URL = fake.url
            yield "yandexgpt", fake


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("cloud_fake", ["gigachat", "yandexgpt"], indirect=True)
async def test_answers_through_the_gigachat_and_yandex_fakes_record_their_usage(
    alice, kb, cloud_fake
):
    name, fake = cloud_fake
    fake.script = Script(tokens=["Within ", "30 days ", "[1]."])
    conversation = await db(make_conversation)(alice, kb, provider=name)

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    usage = next(e for e in events if e["type"] == "usage")
    record = await db(record_of)(events)
    assert (record.provider, record.status, record.user) == (name, "complete", alice)
    assert record.model == usage["model"] and record.model
    assert (record.prompt_tokens, record.completion_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert record.prompt_tokens > 0 and record.completion_tokens > 0
    assert record.knowledge_base_ids == [kb.pk]


@pytest.mark.django_db(transaction=True)
async def test_a_stopped_answer_is_recorded_as_stopped(alice, kb, openai_fake):
    openai_fake.script = Script(tokens=[f"w{i} " for i in range(50)], token_delay=0.05)
    conversation = await db(make_conversation)(alice, kb, provider="openai")
    stream = services.message_send(
        user=alice, conversation_id=conversation.pk, content="When are invoices paid?"
    )
    start = await anext(stream)
    assert start["type"] == "start"
    while (await anext(stream))["type"] != "delta":
        pass

    assert await services.answer_stop(user=alice, conversation_id=conversation.pk)
    await services.answer_wait(conversation_id=conversation.pk)
    await stream.aclose()

    record = await db(UsageRecord.objects.get)(message_id=start["message_id"])
    assert (record.status, record.error_kind) == (MessageStatus.STOPPED, "stopped")
    assert record.first_token_ms is not None and record.total_ms >= record.first_token_ms


@pytest.mark.django_db(transaction=True)
async def test_a_provider_that_fails_records_a_failed_answer_with_its_error_kind(
    alice, kb, openai_fake
):
    openai_fake.fail(500, times=5)
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    record = await db(record_of)(events)
    assert record.status == MessageStatus.FAILED
    assert record.error_kind.startswith("Provider") and record.error
    assert (record.prompt_tokens, record.completion_tokens) == (0, 0)
    assert record.user == alice and record.knowledge_base_ids == [kb.pk]


@pytest.mark.django_db(transaction=True)
async def test_a_provider_that_is_not_configured_is_recorded_as_a_failure(alice, settings):
    settings.OPENAI_BASE_URL = ""
    conversation = await db(make_conversation)(alice, provider="openai")

    events = await ask(alice, conversation.pk, "Hi")

    record = await db(record_of)(events)
    assert (record.status, record.error_kind) == (MessageStatus.FAILED, "ProviderNotConfigured")
    assert "OPENAI_BASE_URL" in record.error
    # No knowledge base: a plain chat never lacks context.
    assert record.knowledge_base_ids == [] and record.no_good_context is False


@pytest.mark.django_db(transaction=True)
async def test_an_answer_asked_again_keeps_the_usage_of_the_one_it_replaced(alice, kb):
    conversation = await db(make_conversation)(alice, kb, provider="offline")
    first = await ask(alice, conversation.pk, "When are invoices paid?")

    second = [
        e
        async for e in services.message_send(
            user=alice, conversation_id=conversation.pk, regenerate=True
        )
    ]

    assert not await db(Message.objects.filter(pk=message_id_of(first)).exists)()
    records = await db(lambda: list(UsageRecord.objects.order_by("id")))()
    assert len(records) == 2
    assert records[0].message_id is None and records[1].message_id == message_id_of(second)


@pytest.mark.django_db(transaction=True)
async def test_a_question_a_knowledge_base_cannot_answer_is_flagged_no_good_context(alice, kb):
    cooking = await db(make_kb)(alice, "Cooking")
    await db(index_document)(
        cooking,
        ["Borscht is a beet soup served with sour cream.", "Pelmeni are boiled dumplings."],
        title="Recipes",
    )
    conversation = await db(make_conversation)(alice, cooking, provider="offline")
    good = await db(make_conversation)(alice, cooking, provider="offline")

    unrelated = await ask(alice, conversation.pk, "What penalty applies to late deliveries?")
    related = await ask(alice, good.pk, "How is borscht served?")

    weak, strong = await db(record_of)(unrelated), await db(record_of)(related)
    assert weak.no_good_context is True and weak.passages_retrieved
    assert weak.best_score is not None and weak.best_score < 0.3
    assert strong.no_good_context is False and strong.best_score is not None
    assert strong.best_score >= 0.3


# --- dashboards, CSV, lists ----------------------------------------------------------------
@pytest.mark.django_db
def test_finishing_an_answer_records_its_usage_once_the_message_is_committed(
    alice, django_capture_on_commit_callbacks
):
    conversation = Conversation.objects.create(owner=alice, provider="offline")
    request = AnswerRequest(question="Why?", provider="offline", model="offline-extractive")
    turn = answers._Turn(conversation.pk, alice.pk, request)
    saved = answers._turn_record(turn)

    with django_capture_on_commit_callbacks() as callbacks:
        message_finish(message_id=saved.message_id, outcome=_Outcome(text="Because."), turn=turn)

    assert Message.objects.get(pk=saved.message_id).status == MessageStatus.COMPLETE
    assert not UsageRecord.objects.exists() and len(callbacks) == 1
    callbacks[0]()
    record = UsageRecord.objects.get()
    assert (record.message_id, record.status, record.question) == (
        saved.message_id,
        "complete",
        "Why?",
    )


@pytest.mark.django_db(transaction=True)
async def test_the_no_good_context_page_lists_the_unanswerable_question_only(alice, client):
    staff = await db(type(alice).objects.create_superuser)("root", "root@example.com", "pw-123456")
    cooking = await db(make_kb)(alice, "Cooking")
    await db(index_document)(cooking, ["Borscht is a beet soup served with sour cream."], title="R")
    first = await db(make_conversation)(alice, cooking, provider="offline")
    second = await db(make_conversation)(alice, cooking, provider="offline")
    await ask(alice, first.pk, "What penalty applies to late deliveries?")
    await ask(alice, second.pk, "How is borscht served?")
    await db(client.force_login)(staff)

    response = await db(client.get)(reverse("admin:chat_usage_no_context"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "What penalty applies to late deliveries?" in html
    assert "How is borscht served?" not in html
    assert "Cooking" in html  # the knowledge base, by name


@pytest.mark.django_db
def test_conversations_are_read_only_in_the_admin(staff_client, alice):
    conversation = Conversation.objects.create(owner=alice, title="Private plans")
    Message.objects.create(conversation=conversation, role=Role.USER, content="A secret question")
    url = reverse("admin:chat_conversation_change", args=[conversation.pk])

    page = staff_client.get(url)
    changed = staff_client.post(url, {"title": "Renamed", "owner": alice.pk})
    deleted = staff_client.post(
        reverse("admin:chat_conversation_delete", args=[conversation.pk]), {"post": "yes"}
    )
    added = staff_client.get(reverse("admin:chat_conversation_add"))

    assert page.status_code == 200 and "A secret question" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert (changed.status_code, deleted.status_code, added.status_code) == (403, 403, 403)
    conversation.refresh_from_db()
    assert conversation.title == "Private plans"
