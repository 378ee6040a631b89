"""The staff's usage dashboard in a real browser: the charts are drawn, the tables filled, and
the CSV link answers (Debian's headless Chromium against a real daphne)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from chat.models import MessageStatus
from usage.models import UsageRecord
from web.tests.conftest import logged_in_context

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _record(user: Any, days_ago: int, **fields: Any) -> None:
    values: dict[str, Any] = {
        "provider": "gigachat",
        "model": "GigaChat-2",
        "status": MessageStatus.COMPLETE,
        "prompt_tokens": 400,
        "completion_tokens": 80,
        "total_ms": 2100,
        "first_token_ms": 350,
        **fields,
    }
    UsageRecord.objects.create(
        user=user, created_at=timezone.now() - dt.timedelta(days=days_ago), **values
    )


def test_the_usage_dashboard_draws_its_charts_for_staff(
    browser, live_server_url, client, alice, bob, django_user_model, password, shot
):
    for day in range(7):
        _record(alice, day)
        _record(bob, day, provider="yandexgpt", model="yandexgpt-lite", prompt_tokens=200)
    _record(
        bob,
        0,
        status=MessageStatus.FAILED,
        error_kind="ProviderUnavailable",
        error="GigaChat is unavailable.",
        prompt_tokens=0,
        completion_tokens=0,
    )
    staff = django_user_model.objects.create_superuser("root", "root@example.com", password)
    server = live_server_url
    page = logged_in_context(browser, server, client, staff).new_page()

    page.goto(server.url + "/admin/usage/usagerecord/dashboard/")

    charts = page.locator("svg")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 3  # answers, tokens and time per day
    assert page.locator("svg rect").count() >= 7  # a bar a day at least
    body = page.locator("body")
    expect(body).to_contain_text("alice")
    expect(body).to_contain_text("yandexgpt-lite")
    expect(body).to_contain_text("ProviderUnavailable")
    shot(page, "admin-usage-dashboard", full_page=True)

    with page.expect_download() as download:
        page.locator("a[href$='export.csv'], a[href*='export.csv?']").first.click()
    text = download.value.path().read_text(encoding="utf-8")
    assert text.count("\n") >= 16  # a header and 15 records
