"""Usage analytics: a record per answer (offline, the OpenAI-compatible fake, failures), the
no-good-context flag, the admin's dashboard, CSV export and no-good-context list, and the
read-only conversations admin."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from chat import services
from chat.models import Conversation, Message, MessageStatus, Role, UsageRecord
from chat.tests.factories import index_document, make_conversation
from chat.usage import MAX_DAYS, Period, usage_by_day, usage_by_model, usage_by_user, usage_totals
from documents.retrieval.tests.factories import make_kb
from providers.fakes import GigaChatFake, Script, YandexFake

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
    stream = services.message_send(user=alice, conversation_id=conversation.pk, content="Q?")
    start = await anext(stream)
    assert start["type"] == "start"
    while (await anext(stream))["type"] != "delta":
        pass

    assert await services.answer_stop(user=alice, conversation_id=conversation.pk)
    await services.answer_wait(conversation.pk)
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


def _record(user: Any, *, days_ago: int = 0, **fields: Any) -> UsageRecord:
    defaults: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "status": MessageStatus.COMPLETE,
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "total_ms": 1000,
        "first_token_ms": 100,
    }
    when = timezone.now() - dt.timedelta(days=days_ago)
    return UsageRecord.objects.create(user=user, created_at=when, **{**defaults, **fields})


@pytest.fixture
def history(alice: Any, bob: Any) -> None:
    _record(alice, prompt_tokens=100, completion_tokens=20, total_ms=1000)
    _record(alice, prompt_tokens=300, completion_tokens=40, total_ms=3000, model="gpt-4o-mini")
    _record(
        bob,
        provider="gigachat",
        model="GigaChat",
        status=MessageStatus.FAILED,
        error_kind="ProviderUnavailable",
        error="GigaChat is unavailable.",
        prompt_tokens=0,
        completion_tokens=0,
        total_ms=500,
        first_token_ms=None,
    )
    _record(
        bob,
        days_ago=1,
        prompt_tokens=50,
        completion_tokens=5,
        question="=HYPERLINK(evil)",
        knowledge_base_ids=[7],
        passages_retrieved=4,
        best_score=0.05,
        no_good_context=True,
    )
    _record(alice, days_ago=40, prompt_tokens=9999)  # outside the last 30 days


@pytest.mark.django_db
def test_the_aggregations_per_day_user_and_model_count_the_period_only(history, alice):
    period = Period.last_days(30)

    totals = usage_totals(period)
    assert (totals.answers, totals.failed, totals.no_good_context) == (4, 1, 1)
    assert (totals.prompt_tokens, totals.completion_tokens) == (450, 65)
    days = usage_by_day(period)
    assert len(days) == 30 and days[-1].key == timezone.localdate().isoformat()
    assert (days[-1].answers, days[-1].failed, days[-1].tokens) == (3, 1, 460)
    assert (days[-2].answers, days[-2].tokens) == (1, 55)
    assert sum(d.answers for d in days[:-2]) == 0
    users = {r.key: r for r in usage_by_user(period)}
    assert (users["alice"].answers, users["alice"].tokens, users["alice"].avg_total_ms) == (
        2,
        460,
        2000,
    )
    assert (users["bob"].answers, users["bob"].failed, users["bob"].tokens) == (2, 1, 55)
    assert [r.key for r in usage_by_user(period)] == ["alice", "bob"]
    models = {r.key: r.answers for r in usage_by_model(period)}
    assert models == {"openai / gpt-4o": 2, "openai / gpt-4o-mini": 1, "gigachat / GigaChat": 1}


@pytest.mark.django_db
def test_the_dashboard_shows_the_numbers_and_charts_for_staff(history, staff_client):
    response = staff_client.get(reverse("admin:chat_usage_dashboard"))

    assert response.status_code == 200
    totals = response.context["totals"]
    assert (totals.answers, totals.failed, totals.prompt_tokens) == (4, 1, 450)
    html = response.content.decode()
    assert 'data-total="answers">4<' in html and 'data-total="prompt_tokens">450<' in html
    assert (
        html.count('<figure class="usage-chart">') == 3 and 'class="bar-overlay"' in html
    )  # the failed answers
    chart = response.context["answers_chart"]
    assert [b.value for b in chart.bars][-2:] == [1, 3]
    assert chart.bars[-1].overlay_value == 1
    assert chart.bars[-1].height > chart.bars[-2].height > 0
    assert "ProviderUnavailable" in html and "GigaChat is unavailable." in html
    assert "gigachat / GigaChat" in html and "openai / gpt-4o-mini" in html


@pytest.mark.django_db
def test_the_dashboard_takes_a_date_range(history, staff_client):
    yesterday = timezone.localdate() - dt.timedelta(days=1)

    response = staff_client.get(
        reverse("admin:chat_usage_dashboard"),
        {"start": yesterday.isoformat(), "end": yesterday.isoformat()},
    )

    totals = response.context["totals"]
    assert (totals.answers, totals.prompt_tokens) == (1, 50)
    assert [r.key for r, _share in response.context["users"]] == ["bob"]


def test_a_date_range_is_parsed_leniently_and_capped():
    today = timezone.localdate()

    assert Period.parse(None, None) == Period(today - dt.timedelta(days=29), today)
    assert Period.parse("2026-03-10", "2026-03-01") == Period(
        dt.date(2026, 3, 1), dt.date(2026, 3, 10)
    )
    five_ago = today - dt.timedelta(days=5)
    assert Period.parse("not a date", five_ago.isoformat()) == Period(
        today - dt.timedelta(days=29), five_ago
    )
    wide = Period.parse("1900-01-01", "2026-03-01")
    assert wide.end == dt.date(2026, 3, 1) and len(wide.days()) == MAX_DAYS


@pytest.mark.django_db
def test_the_csv_export_streams_every_record_of_the_range(history, staff_client, alice):
    response = staff_client.get(reverse("admin:chat_usage_export"))

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="usage-')
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4
    assert sum(int(r["prompt_tokens"]) for r in rows) == 450
    failed = next(r for r in rows if r["status"] == "failed")
    assert (failed["user"], failed["provider"], failed["error_kind"]) == (
        "bob",
        "gigachat",
        "ProviderUnavailable",
    )
    weak = next(r for r in rows if r["no_good_context"] == "1")
    assert weak["knowledge_base_ids"] == "7" and weak["best_score"] == "0.0500"
    assert weak["question"] == "'=HYPERLINK(evil)"  # not run as a formula by a spreadsheet


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
@pytest.mark.parametrize(
    "name", ["admin:chat_usage_dashboard", "admin:chat_usage_export", "admin:chat_usage_no_context"]
)
def test_the_usage_pages_send_non_staff_to_the_admin_login(name, history, alice_client, client):
    url = reverse(name)

    not_staff = alice_client.get(url)
    client.logout()
    anonymous = client.get(url)

    assert not_staff.status_code == 302
    assert not_staff["Location"] == f"{reverse('admin:login')}?next={url}"
    assert anonymous.status_code == 302  # the site's login page first
    assert anonymous["Location"] == f"{reverse(settings.LOGIN_URL)}?next={url}"


@pytest.mark.django_db
def test_the_usage_records_are_listed_read_only(history, staff_client):
    record = UsageRecord.objects.filter(status=MessageStatus.FAILED).get()

    listing = staff_client.get(reverse("admin:chat_usagerecord_changelist"), {"status": "failed"})
    change = staff_client.post(
        reverse("admin:chat_usagerecord_change", args=[record.pk]), {"prompt_tokens": 1}
    )

    assert listing.status_code == 200 and listing.context["cl"].result_count == 1
    assert reverse("admin:chat_usage_dashboard") in listing.content.decode()
    assert change.status_code == 403
    record.refresh_from_db()
    assert record.prompt_tokens == 0


# --- conversations admin -------------------------------------------------------------------


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
