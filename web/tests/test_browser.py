"""Journeys in a real browser: Debian's headless Chromium, driven by Playwright, against a real
daphne. Run with ``RAGGEN_SCREENSHOTS=1`` to refresh docs/screenshots/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from chat.models import Citation, Conversation, Message, PromptTemplate
from conftest import SHARED
from documents.models import Chunk
from web.tests.conftest import logged_in_context

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PDF = SHARED / "testdata" / "docs" / "pdf" / "sample-files" / "google-doc-document.pdf"
INDEXING_TIMEOUT_MS = 240_000


def _frames(page: Any, path_part: str) -> list[dict[str, Any]]:
    """Collects the JSON frames the page receives on websockets whose URL contains path_part."""
    frames: list[dict[str, Any]] = []

    def on_socket(socket: Any) -> None:
        if path_part in socket.url:
            socket.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return frames


def test_sign_up_upload_watch_progress_ask_and_open_the_cited_page(browser, live_server_url, shot):
    server = live_server_url
    page = browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme="light")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(server.url + "/accounts/login/")
    shot(page, "login-light")
    page.goto(server.url + "/accounts/signup/")
    page.fill("input[name=email]", "nina@example.com")
    page.fill("input[name=username]", "nina")
    page.fill("input[name=password1]", "a long passphrase 991")
    page.fill("input[name=password2]", "a long passphrase 991")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(server.url + "/")

    page.get_by_role("link", name="Knowledge bases").click()
    page.fill("#new-name", "Zen")
    page.locator("#kb-create-form button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/kb/\d+/$"))

    progress = _frames(page, "/progress/")
    page.reload()  # listen from the start: the frames hook is set before the socket opens
    page.set_input_files("#file-input", str(PDF))
    row = page.locator("#doc-rows tr[data-id]").first
    expect(row.locator(".status-label")).to_have_text("Indexed", timeout=INDEXING_TIMEOUT_MS)
    statuses = [f["status"] for f in progress if f.get("type") == "progress"]
    assert "indexed" in statuses, statuses
    assert any(s in statuses for s in ("extracting", "chunking", "embedding")), statuses
    expect(row.locator(".doc-progress")).to_be_hidden()

    page.fill("#search-query", "beautiful is better than ugly")
    page.locator("#search-form button[type=submit]").click()
    first_hit = page.locator("#search-results .hit").first
    expect(first_hit).to_contain_text("Beautiful is better than ugly")
    expect(first_hit.locator(".scores")).to_contain_text("fused")
    expect(first_hit.locator(".scores")).to_contain_text("dense")
    expect(first_hit.locator(".scores")).to_contain_text("keyword")
    shot(page, "kb-light", full_page=True)

    row.locator(".doc-name a").click()
    expect(page.locator(".chunk").first).to_contain_text("Beautiful is better than ugly")
    shot(page, "document-light", full_page=True)

    page.goto(server.url + "/")
    chat_frames = _frames(page, "/ws/chat/")
    page.locator("#source-picker input[name=kb]").first.check()
    page.fill("#composer-input", "Is beautiful better than ugly?")
    page.keyboard.press("Enter")
    answer = page.locator(".msg.assistant").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=60_000)
    deltas = [f for f in chat_frames if f["type"] == "delta"]
    assert len(deltas) > 5, "the answer arrived in one piece, not streamed"
    expect(answer.locator(".msg-body")).to_contain_text("Beautiful is better than ugly")
    expect(page).to_have_url(re.compile(r".*/c/\d+/$"))

    chip = answer.locator(".citations .cite-chip").first
    expect(chip).to_contain_text("google-doc-document")
    chip.click()
    dialog = page.locator("#citation-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Beautiful is better than ugly")
    href = page.get_attribute("#citation-link", "href")
    assert href is not None
    citation = Citation.objects.get(message__conversation__owner__username="nina", number=1)
    assert citation.chunk_id is not None
    assert citation.document is not None
    chunk = Chunk.objects.get(pk=citation.chunk_id)
    assert href == f"/api/v1/documents/{citation.document_id}/file#page={chunk.page_start}"
    original = page.request.get(server.url + href.split("#")[0])
    assert original.status == 200
    assert original.headers["content-type"] == "application/pdf"
    assert original.headers["content-disposition"].startswith("inline")
    shot(page, "chat-citation-light")
    page.keyboard.press("Escape")
    shot(page, "chat-light")

    page.click("#theme-toggle")
    shot(page, "chat-dark")
    page.goto(server.url + f"/kb/{citation.document.knowledge_base_id}/")
    shot(page, "kb-dark", full_page=True)
    assert errors == []


def test_stop_ends_a_streaming_answer_and_keeps_what_arrived(
    browser, live_server_url, client, alice
):
    server = live_server_url
    context = logged_in_context(browser, server, client, alice)
    page = context.new_page()
    page.goto(server.url + "/")
    page.select_option("#provider-select", "openai")
    page.fill("#composer-input", "Tell me a long story")
    page.keyboard.press("Enter")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".msg-body")).to_contain_text("word3", timeout=30_000)
    expect(page.locator("#send-button")).to_be_disabled()

    page.click("#stop-button")

    expect(answer).to_have_attribute("data-status", "stopped", timeout=15_000)
    expect(answer.locator(".msg-meta")).to_have_text("Stopped.")
    expect(page.locator("#stop-button")).to_be_hidden()
    expect(page.locator("#send-button")).to_be_enabled()
    assert "word399" not in answer.locator(".msg-body").inner_text()
    saved = Message.objects.get(conversation__owner=alice, role="assistant")
    assert saved.status == "stopped"
    assert saved.content.startswith("word0 word1 word2 word3")
    context.close()


def test_theme_follows_the_system_and_the_toggle_is_remembered(
    browser, live_server_url, client, alice
):
    server = live_server_url
    background = "getComputedStyle(document.body).backgroundColor"
    context = logged_in_context(browser, server, client, alice, color_scheme="light")
    page = context.new_page()
    page.goto(server.url + "/kb/")
    assert page.get_attribute("html", "data-theme") == "auto"
    light = page.evaluate(background)

    page.click("#theme-toggle")
    assert page.get_attribute("html", "data-theme") == "dark"
    dark = page.evaluate(background)
    assert dark != light
    page.reload()
    assert page.get_attribute("html", "data-theme") == "dark"
    assert page.evaluate(background) == dark
    page.click("#theme-toggle")
    page.reload()
    assert page.evaluate(background) == light
    context.close()

    system_dark = logged_in_context(browser, server, client, alice, color_scheme="dark")
    page = system_dark.new_page()
    page.goto(server.url + "/kb/")
    assert page.get_attribute("html", "data-theme") == "auto"
    assert page.evaluate(background) == dark
    system_dark.close()


def test_russian_interface_from_the_browser_language(browser, live_server_url, client, alice, shot):
    server = live_server_url
    context = logged_in_context(browser, server, client, alice, locale="ru-RU")
    page = context.new_page()
    page.goto(server.url + "/kb/")
    assert page.get_attribute("html", "lang") == "ru"
    expect(page.locator("h1")).to_have_text("Базы знаний")
    page.fill("#new-name", "Кадры")
    page.locator("#kb-create-form button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/kb/\d+/$"))
    expect(page.locator("#docs-title")).to_have_text("Документы")
    expect(page.locator("#search-title")).to_have_text("Проверка поиска")
    shot(page, "kb-ru")

    page.goto(server.url + "/")
    expect(page.locator("#send-button")).to_have_text("Отправить")
    page.fill("#composer-input", "Сколько дней отпуска?")
    page.keyboard.press("Enter")
    answer = page.locator(".msg.assistant").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=60_000)
    # Strings made by the JavaScript come from the translated dictionary.
    expect(page.locator(".msg.user .msg-role")).to_have_text("Вы")
    expect(answer.locator(".msg-role")).to_have_text("Ассистент")
    expect(answer.locator("[data-action=copy]")).to_have_text("Копировать")
    shot(page, "chat-ru")

    page.select_option("#language-select", "en")
    expect(page.locator("#send-button")).to_have_text("Send")
    context.close()


def test_a_375_pixel_phone_collapses_the_sidebar_and_keeps_the_input_reachable(
    browser, live_server_url, client, alice, shot
):
    server = live_server_url
    conversation = Conversation.objects.create(owner=alice, title="Holidays")
    Message.objects.create(conversation=conversation, role="user", content="How many days?")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        status="complete",
        content="Twenty-eight days a year [1].",
        model="offline-extractive",
    )
    context = logged_in_context(
        browser, server, client, alice, viewport={"width": 375, "height": 740}
    )
    page = context.new_page()
    page.goto(server.url + f"/c/{conversation.pk}/")
    expect(page.locator(".msg.assistant")).to_contain_text("Twenty-eight days")
    overflow = "document.documentElement.scrollWidth"
    assert page.evaluate(overflow) <= 375
    expect(page.locator("#sidebar")).to_be_hidden()
    composer = page.locator("#composer-input")
    expect(composer).to_be_in_viewport()
    box = composer.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 740
    shot(page, "chat-phone")

    page.click("#sidebar-toggle")
    expect(page.locator("#sidebar")).to_be_visible()
    expect(page.locator("#conversation-list")).to_contain_text("Holidays")
    shot(page, "chat-phone-sidebar")
    page.keyboard.press("Escape")
    expect(page.locator("#sidebar")).to_be_hidden()

    page.goto(server.url + "/kb/")
    assert page.evaluate(overflow) <= 375
    expect(page.locator("#kb-create-form button[type=submit]")).to_be_in_viewport()
    context.close()


def test_answers_are_sanitised_markdown_and_the_keyboard_drives_the_composer(
    browser, live_server_url, client, alice
):
    server = live_server_url
    conversation = Conversation.objects.create(owner=alice, title="Markdown")
    Message.objects.create(conversation=conversation, role="user", content="Show me")
    answer = Message.objects.create(
        conversation=conversation,
        role="assistant",
        status="complete",
        content=(
            "**Bold** and a source [1].\n\n<img src=x onerror=\"alert('xss')\">"
            "<script>alert('xss')</script><p style=\"color:red\">styled</p>\n\n"
            "```python\ndef greet():\n    return 'hi'\n```\n\n[link](javascript:alert(1))"
        ),
    )
    Citation.objects.create(
        message=answer,
        number=1,
        document_title="Leave policy",
        file_name="leave.pdf",
        page=2,
        quote="Twenty-eight days.",
    )
    PromptTemplate.objects.create(owner=alice, name="Summarise", body="Summarise {topic} briefly")
    context = logged_in_context(browser, server, client, alice)
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(server.url + f"/c/{conversation.pk}/")

    body = page.locator(".msg.assistant .msg-body")
    expect(body.locator("strong")).to_have_text("Bold")
    expect(body.locator("pre code .hljs-keyword").first).to_have_text("def")
    assert body.locator("script").count() == 0
    assert body.locator("[onerror]").count() == 0
    assert body.locator("[style]").count() == 0
    assert body.locator("a[href^='javascript']").count() == 0
    inline_chip = body.locator(".cite-chip")
    expect(inline_chip).to_have_text("1")
    inline_chip.click()
    expect(page.locator("#citation-dialog")).to_contain_text("Twenty-eight days.")
    expect(page.locator("#citation-meta")).to_contain_text("page 2")
    page.keyboard.press("Escape")

    composer = page.locator("#composer-input")
    composer.focus()
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    assert composer.input_value() == "line one\nline two"
    assert page.locator(".msg.user").count() == 1

    composer.fill("")
    page.keyboard.type("/Sum")
    expect(page.locator("#template-menu")).to_be_visible()
    expect(page.locator("#template-menu [role=option]").first).to_contain_text("Summarise")
    page.keyboard.press("Enter")
    assert composer.input_value() == "Summarise {topic} briefly"
    expect(page.locator("#template-menu")).to_be_hidden()

    page.keyboard.press("Shift+Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    assert dialogs == []
    context.close()


def test_browser_tests_skip_with_an_install_hint_without_chromium(monkeypatch):
    from web.tests import conftest as browser_conftest

    monkeypatch.setattr(browser_conftest, "CHROMIUM", Path("/nonexistent/chromium"))
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        next(browser_conftest.browser.__wrapped__())  # type: ignore[attr-defined]
