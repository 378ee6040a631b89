"""Usage analytics: the aggregations, the admin's dashboard, its date range, the CSV export,
and the pages' access (staff only, records read-only). What an answer records is
``chat/tests/test_usage_recording.py``'s."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from usage.models import AnswerStatus, UsageRecord
from usage.selectors import (
    MAX_DAYS,
    Period,
    usage_by_day,
    usage_by_model,
    usage_by_user,
    usage_totals,
)


def _record(user: Any, *, days_ago: int = 0, **fields: Any) -> UsageRecord:
    defaults: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "status": AnswerStatus.COMPLETE,
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
        status=AnswerStatus.FAILED,
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

    totals = usage_totals(period=period)
    assert (totals.answers, totals.failed, totals.no_good_context) == (4, 1, 1)
    assert (totals.prompt_tokens, totals.completion_tokens) == (450, 65)
    days = usage_by_day(period=period)
    assert len(days) == 30 and days[-1].key == timezone.localdate().isoformat()
    assert (days[-1].answers, days[-1].failed, days[-1].tokens) == (3, 1, 460)
    assert (days[-2].answers, days[-2].tokens) == (1, 55)
    assert sum(d.answers for d in days[:-2]) == 0
    users = {r.key: r for r in usage_by_user(period=period)}
    assert (users["alice"].answers, users["alice"].tokens, users["alice"].avg_total_ms) == (
        2,
        460,
        2000,
    )
    assert (users["bob"].answers, users["bob"].failed, users["bob"].tokens) == (2, 1, 55)
    assert [r.key for r in usage_by_user(period=period)] == ["alice", "bob"]
    models = {r.key: r.answers for r in usage_by_model(period=period)}
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
        html.count('<figure class="usage-chart">') == 4 and 'class="bar-overlay"' in html
    )  # the failed answers
    chart = response.context["answers_chart"]
    assert [b.value for b in chart.bars][-2:] == [1, 3]
    assert chart.bars[-1].overlay_value == 1
    assert chart.bars[-1].height > chart.bars[-2].height > 0
    assert "ProviderUnavailable" in html and "GigaChat is unavailable." in html
    assert "gigachat / GigaChat" in html and "openai / gpt-4o-mini" in html


@pytest.mark.django_db
def test_the_share_of_supported_sentences_per_day_and_model_on_the_dashboard(alice, staff_client):
    _record(alice, grounded_share=1.0)
    _record(alice, grounded_share=0.5)
    _record(alice, provider="gigachat", model="GigaChat")  # not checked: not counted
    _record(alice, days_ago=1, grounded_share=0.2)
    period = Period.last_days(30)

    assert usage_totals(period=period).grounded_percent == 57  # (1 + 0.5 + 0.2) / 3
    days = usage_by_day(period=period)
    assert [d.grounded_percent for d in days[-2:]] == [20, 75]
    assert {d.grounded_percent for d in days[:-2]} == {None}
    models = {r.key: r.grounded_percent for r in usage_by_model(period=period)}
    assert models == {"openai / gpt-4o": 57, "gigachat / GigaChat": None}

    response = staff_client.get(reverse("admin:chat_usage_dashboard"))

    html = response.content.decode()
    assert 'data-total="grounded_percent">57<' in html
    assert [b.value for b in response.context["grounded_chart"].bars][-2:] == [20, 75]
    assert "<td>openai / gpt-4o</td><td>3</td>" in html and "<td>57</td>" in html


@pytest.mark.django_db
def test_the_csv_export_has_the_share_of_supported_sentences(alice, staff_client):
    _record(alice, grounded_share=0.75)
    _record(alice)

    response = staff_client.get(reverse("admin:chat_usage_export"))

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(r["grounded_share"] for r in rows) == ["", "0.7500"]


@pytest.mark.django_db
def test_refusals_are_counted_with_their_share_on_the_dashboard_and_in_the_csv(alice, staff_client):
    _record(alice, refused=True, no_good_context=True, prompt_tokens=0, completion_tokens=0)
    _record(alice)
    _record(alice)
    _record(alice, provider="gigachat", model="GigaChat", refused=True, no_good_context=True)
    period = Period.last_days(30)

    totals = usage_totals(period=period)
    assert (totals.answers, totals.refused, totals.refused_percent) == (4, 2, 50)
    models = {r.key: (r.refused, r.refused_percent) for r in usage_by_model(period=period)}
    assert models == {"openai / gpt-4o": (1, 33), "gigachat / GigaChat": (1, 100)}
    assert {r.key: r.refused for r in usage_by_user(period=period)} == {"alice": 2}
    assert usage_by_day(period=period)[-1].refused == 2

    html = staff_client.get(reverse("admin:chat_usage_dashboard")).content.decode()

    assert 'data-total="refused">2 <small data-total="refused_percent">(50%)</small><' in html
    assert "<td>33</td>" in html and "<td>100</td>" in html
    response = staff_client.get(reverse("admin:chat_usage_export"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(r["refused"] for r in rows) == ["0", "0", "1", "1"]


@pytest.mark.django_db
def test_no_answers_no_refused_share(staff_client):
    assert usage_totals(period=Period.last_days(30)).refused_percent is None
    html = staff_client.get(reverse("admin:chat_usage_dashboard")).content.decode()
    assert 'data-total="refused">0</strong>' in html


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
    record = UsageRecord.objects.filter(status=AnswerStatus.FAILED).get()

    listing = staff_client.get(reverse("admin:usage_usagerecord_changelist"), {"status": "failed"})
    change = staff_client.post(
        reverse("admin:usage_usagerecord_change", args=[record.pk]), {"prompt_tokens": 1}
    )

    assert listing.status_code == 200 and listing.context["cl"].result_count == 1
    assert reverse("admin:chat_usage_dashboard") in listing.content.decode()
    assert change.status_code == 403
    record.refresh_from_db()
    assert record.prompt_tokens == 0


# --- conversations admin -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_pages_old_addresses_under_chat_lead_to_the_usage_app(staff_client):
    old = staff_client.get("/admin/chat/usagerecord/dashboard/", {"start": "2026-01-01"})
    secrets = staff_client.get("/admin/chat/providersecret/")

    assert old.status_code == 302
    assert old["Location"] == reverse("admin:chat_usage_dashboard") + "?start=2026-01-01"
    assert staff_client.get(old["Location"]).status_code == 200
    assert secrets["Location"] == reverse("admin:provider_settings_providersecret_changelist")
