"""A question asked before the open conversation's history has loaded waits for it: the history,
arriving late, never lands over the new question and its answer."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Route, expect

from chat.models import Conversation, Message, Role
from web.tests.conftest import logged_in_context

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_question_asked_while_the_history_loads_is_kept(browser, live_server_url, client, alice):
    server = live_server_url
    conversation = Conversation.objects.create(owner=alice, title="Slow history")
    Message.objects.create(conversation=conversation, role=Role.USER, content="An old question")
    context = logged_in_context(browser, server, client, alice)
    page = context.new_page()
    held: list[Route] = []

    def hold(route: Route, request: Any) -> None:  # the first page of the history waits
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route("**/messages?*", hold)
    page.goto(server.url + f"/c/{conversation.pk}/")
    page.fill("#param-max-tokens", "99999")  # refused over the websocket: a quick, failed answer
    page.fill("#composer-input", "A new question")
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)  # room for the question to be sent, if it did not wait
    assert len(held) == 1
    held[0].continue_()

    answer = page.locator(".msg.assistant").last
    expect(answer).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(page.locator(".msg.user .msg-body")).to_have_text(["An old question", "A new question"])
    context.close()
