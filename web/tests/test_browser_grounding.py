"""An answer's sentence that no passage supports is marked "not found in the sources" in the
chat (the grounding check, issue 16 point 4): live, as the ``grounding`` event arrives after the
answer, and after a reload, from the stored report. Not by colour alone: a dotted underline, a
tooltip, and the same words for a screen reader."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat.models import Message
from chat.tests.factories import make_conversation, make_indexed_kb
from providers.fakes import Script
from web.tests.conftest import logged_in_context

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SUPPORTED = "Invoices are paid within 30 days of receipt by bank transfer [1]."
INVENTED = "The finance director Margaret Thornton signs every invoice by hand."


def test_an_invented_sentence_is_marked_live_and_after_a_reload(
    browser, live_server_url, client, alice
):
    server = live_server_url
    server.fake.script = Script(tokens=[SUPPORTED, " ", INVENTED])
    kb = make_indexed_kb(alice)
    conversation = make_conversation(alice, kb, provider="openai", title="Invoices")
    context = logged_in_context(browser, server, client, alice)
    page = context.new_page()
    page.goto(server.url + f"/c/{conversation.pk}/")

    page.fill("#composer-input", "When are invoices paid?")
    page.keyboard.press("Enter")

    answer = page.locator(".msg.assistant").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    for where in ("live", "after a reload"):
        mark = answer.locator(".msg-body .ungrounded")
        expect(mark, where).to_have_count(1, timeout=10_000)
        expect(mark, where).to_have_attribute("title", "Not found in the sources")
        expect(mark, where).to_contain_text(INVENTED)
        expect(mark.locator(".visually-hidden"), where).to_have_text(" (Not found in the sources)")
        assert "dotted" in mark.evaluate("m => getComputedStyle(m).textDecorationStyle"), where
        # The supported sentence stays unmarked, its citation still a chip.
        expect(answer.locator(".msg-body"), where).to_contain_text("Invoices are paid")
        assert answer.locator(".msg-body .ungrounded", has_text="Invoices").count() == 0
        if where == "live":
            page.reload()
            answer = page.locator(".msg.assistant").last
    stored = Message.objects.get(role="assistant").grounding
    assert stored is not None and stored["supported_share"] == 0.5
    context.close()
