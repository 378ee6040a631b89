"""A conversation longer than one page of the messages API opens whole in the browser, down to
its newest answer."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat.models import Conversation, Message, Role
from web.tests.conftest import logged_in_context

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_conversation_of_more_than_one_page_shows_every_message(
    browser, live_server_url, client, alice
):
    conversation = Conversation.objects.create(owner=alice, title="Long one")
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
            content=f"message number {i}",
        )
        for i in range(1203)  # three pages of 500 and a bit
    )
    context = logged_in_context(browser, live_server_url, client, alice)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{live_server_url.url}/c/{conversation.pk}/")

    expect(page.locator(".msg")).to_have_count(1203, timeout=30_000)
    expect(page.locator(".msg").first).to_contain_text("message number 0")
    expect(page.locator(".msg").last).to_contain_text("message number 1202")
    assert errors == []
    context.close()
