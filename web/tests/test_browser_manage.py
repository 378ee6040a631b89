"""Managing knowledge bases, documents and conversations in a real browser (Debian's headless
Chromium against a real daphne)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from playwright.sync_api import expect

from chat.models import Conversation, Message
from conftest import SHARED
from documents.models import Document, KnowledgeBase
from web.tests.conftest import logged_in_context

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ENCRYPTED_PDF = (
    SHARED / "testdata" / "docs" / "pdf" / "sample-files" / "libreoffice-writer-password.pdf"
)
INDEXING_TIMEOUT_MS = 240_000


def _eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _drop_files(page: Any, selector: str, files: list[tuple[str, str]]) -> None:
    """Drops text files on ``selector`` as a user dragging them from the desktop would."""
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, text] of files) {
                transfer.items.add(new File([text], name, { type: "text/plain" }));
            }
            return transfer;
        }""",
        files,
    )
    page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def _row(page: Any, title: str) -> Any:
    return page.locator("#doc-rows tr[data-id]", has=page.locator(".doc-name a", has_text=title))


def test_knowledge_base_and_documents_are_managed_from_the_page(
    browser, live_server_url, client, alice
):
    server = live_server_url
    context = logged_in_context(browser, server, client, alice)
    page = context.new_page()
    page.goto(server.url + "/kb/")
    page.fill("#new-name", "Policies")
    page.locator("#kb-create-form summary").click()
    page.fill("#new-max-chunk", "120")
    page.locator("#kb-create-form button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/kb/\d+/$"))
    kb = KnowledgeBase.objects.get(owner=alice, name="Policies")
    assert kb.max_chunk_tokens == 120
    expect(page.locator("#kb-max-chunk")).to_have_value("120")

    _drop_files(
        page,
        "#drop-zone",
        [("leave.txt", "Holidays are 28 days a year."), ("travel.md", "# Travel\n\nTrains.")],
    )
    for title in ("leave", "travel"):
        expect(_row(page, title).locator(".status-label")).to_have_text(
            "Indexed", timeout=INDEXING_TIMEOUT_MS
        )

    page.set_input_files("#file-input", str(ENCRYPTED_PDF))
    broken = _row(page, "libreoffice-writer-password")
    expect(broken.locator(".status-label")).to_have_text("Failed", timeout=INDEXING_TIMEOUT_MS)
    expect(broken.locator(".failure-reason")).to_be_visible()
    expect(broken.locator("[data-action=retry]")).to_be_visible()
    reason = Document.objects.get(knowledge_base=kb, title="libreoffice-writer-password")
    expect(broken.locator(".failure-reason")).to_have_text(reason.failure_reason)

    leave = Document.objects.get(knowledge_base=kb, title="leave")
    with page.expect_file_chooser() as chooser:
        _row(page, "leave").locator("[data-action=version]").click()
    chooser.value.set_files(
        files=[{"name": "leave.txt", "mimeType": "text/plain", "buffer": b"Holidays: 30 days."}]
    )
    _eventually(
        lambda: Document.objects.filter(replaces=None, is_current=True, version=2).exists(),
        timeout=INDEXING_TIMEOUT_MS / 1000,
    )
    expect(page.locator(f'#doc-rows tr[data-id="{leave.pk}"]')).to_have_count(0)
    expect(_row(page, "leave")).to_have_count(1)
    expect(_row(page, "leave")).to_contain_text("version 2")

    travel = _row(page, "travel")
    travel.locator("[data-action=delete]").click()
    page.locator("#confirm-dialog button[value=cancel]").click()
    expect(travel).to_have_count(1)
    travel.locator("[data-action=delete]").click()
    expect(page.locator("#confirm-text")).to_contain_text("travel")
    page.locator("#confirm-ok").click()
    expect(travel).to_have_count(0)
    assert not Document.objects.filter(knowledge_base=kb, title="travel").exists()

    page.fill("#kb-keyword", "0.5")
    page.locator("#kb-settings-form button[type=submit]").click()
    expect(page.locator("#kb-settings-status")).to_have_text("Saved.")
    kb.refresh_from_db()
    assert kb.keyword_weight == 0.5

    page.goto(server.url + "/kb/")
    item = page.locator("#kb-list li", has_text="Policies")
    item.locator("[data-action=delete-kb]").click()
    expect(page.locator("#confirm-text")).to_contain_text("Policies")
    page.locator("#confirm-ok").click()
    expect(item).to_have_count(0)
    assert not KnowledgeBase.objects.filter(pk=kb.pk).exists()
    context.close()


def test_conversations_are_searched_renamed_deleted_copied_regenerated_and_configured(
    browser, live_server_url, client, alice
):
    server = live_server_url
    kb = KnowledgeBase.objects.create(owner=alice, name="Handbook")
    holidays = Conversation.objects.create(owner=alice, title="Holidays")
    Message.objects.create(conversation=holidays, role="user", content="How many days?")
    Message.objects.create(
        conversation=holidays, role="assistant", status="complete", content="**28** days."
    )
    Conversation.objects.create(owner=alice, title="Travel")
    context = logged_in_context(browser, server, client, alice)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(server.url + f"/c/{holidays.pk}/")
    sidebar = page.locator("#conversation-list")

    page.fill("#conversation-search", "Trav")
    expect(sidebar.locator("li")).to_have_count(1)
    expect(sidebar).to_contain_text("Travel")
    page.fill("#conversation-search", "")
    expect(sidebar.locator("li")).to_have_count(2)

    page.once("dialog", lambda dialog: dialog.accept("Trips"))
    sidebar.locator("li", has_text="Travel").locator("[data-action=rename]").click()
    expect(sidebar).to_contain_text("Trips")
    assert Conversation.objects.filter(owner=alice, title="Trips").exists()
    page.once("dialog", lambda dialog: dialog.accept())
    sidebar.locator("li", has_text="Trips").locator("[data-action=delete]").click()
    expect(sidebar.locator("li")).to_have_count(1)
    assert not Conversation.objects.filter(owner=alice, title="Trips").exists()

    answer = page.locator(".msg.assistant").first
    answer.locator("[data-action=copy]").click()
    expect(answer.locator("[data-action=copy]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "**28** days."

    answer.locator("[data-action=regenerate]").click()
    fresh = page.locator(".msg.assistant")
    expect(fresh).to_have_count(1)
    expect(fresh).to_have_attribute("data-status", "complete", timeout=60_000)
    assert Message.objects.filter(conversation=holidays, role="assistant").count() == 1
    assert "**28**" not in Message.objects.get(conversation=holidays, role="assistant").content

    export = page.get_attribute("#export-markdown", "href")
    assert export is not None
    exported = page.request.get(server.url + export)
    assert exported.status == 200
    assert "How many days?" in exported.text()

    expect(page.locator('#provider-select option[value="yandexgpt"]')).to_be_disabled()
    page.fill("#param-max-tokens", "500")
    page.locator("#param-max-tokens").dispatch_event("change")
    page.locator(f'#source-picker input[name=kb][value="{kb.pk}"]').check()

    def saved() -> bool:
        holidays.refresh_from_db()
        return holidays.params.get("max_tokens") == 500 and list(
            holidays.knowledge_bases.values_list("pk", flat=True)
        ) == [kb.pk]

    _eventually(saved)
    context.close()


def test_a_refused_question_shows_the_reason_and_frees_the_composer(
    browser, live_server_url, client, alice
):
    server = live_server_url
    conversation = Conversation.objects.create(owner=alice, title="Limits")
    context = logged_in_context(browser, server, client, alice)
    page = context.new_page()
    page.goto(server.url + "/")
    page.fill("#param-max-tokens", "99999")  # above the API's limit of 32000
    page.fill("#composer-input", "How many days?")
    page.keyboard.press("Enter")
    # A new conversation is refused as a whole: the reason shows, nothing is sent.
    expect(page.locator("#chat-status")).to_contain_text("max_tokens")
    assert page.locator(".msg").count() == 0

    page.goto(server.url + f"/c/{conversation.pk}/")
    page.fill("#param-max-tokens", "99999")
    page.fill("#composer-input", "How many days?")
    page.keyboard.press("Enter")
    # Over the websocket the question is refused before it starts: no "done" follows.
    answer = page.locator(".msg.assistant").last
    expect(answer).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(answer.locator(".msg-meta")).to_contain_text("max_tokens")
    expect(page.locator("#send-button")).to_be_enabled()
    expect(page.locator("#stop-button")).to_be_hidden()
    context.close()


def test_the_owner_shares_a_knowledge_base_and_each_role_sees_what_it_may_do(
    browser, live_server_url, client, alice, bob, shot
):
    """The owner shares by user name as a viewer, then changes the role to editor and removes
    the share, from the sharing section; the other user's pages follow each change."""
    server = live_server_url
    kb = KnowledgeBase.objects.create(owner=alice, name="Contracts")
    owner = logged_in_context(browser, server, client, alice).new_page()
    owner.goto(f"{server.url}/kb/{kb.pk}/")
    expect(owner.locator("#share-empty")).to_be_visible()
    # An unknown name gets the answer a known one gets (no user enumeration); the list, read
    # again, shows that nobody was added.
    owner.fill("#share-user", "nobody-here")
    owner.locator("#share-form button[type=submit]").click()
    expect(owner.locator("#share-status")).to_contain_text("The list of shares shows who")
    expect(owner.locator("#share-empty")).to_be_visible()
    expect(owner.locator("#share-error")).to_be_empty()

    owner.fill("#share-user", "bob@example.com")
    owner.select_option("#share-role", "viewer")
    owner.locator("#share-form button[type=submit]").click()
    row = owner.locator("#share-list li", has_text="bob")
    expect(row).to_have_count(1)
    expect(owner.locator("#share-empty")).to_be_hidden()
    owner.locator("#sharing-title").scroll_into_view_if_needed()
    shot(owner, "kb-sharing")
    share = kb.shares.get()
    assert (share.user_id, share.role) == (bob.pk, "viewer")

    # A client of its own: logging bob in on alice's client would end her session.
    guest = logged_in_context(browser, server, Client(), bob).new_page()
    guest.goto(server.url + "/kb/")
    expect(guest.locator("#kb-list li", has_text="Contracts")).to_contain_text("alice")
    expect(guest.locator("#kb-list li [data-action=delete-kb]")).to_have_count(0)
    guest.goto(f"{server.url}/kb/{kb.pk}/")
    expect(guest.locator("#kb-shared-by")).to_contain_text("alice")
    expect(guest.locator("#drop-zone")).to_have_count(0)
    expect(guest.locator("#kb-settings-form")).to_have_count(0)
    expect(guest.locator("#search-form")).to_be_visible()

    row.locator("select[data-action=share-role]").select_option("editor")
    _eventually(lambda: kb.shares.get().role == "editor")
    guest.reload()
    expect(guest.locator("#drop-zone")).to_be_visible()
    expect(guest.locator("#kb-settings-form")).to_be_visible()
    expect(guest.locator("#kb-delete")).to_have_count(0)
    expect(guest.locator("#share-form")).to_have_count(0)

    row.locator("[data-action=unshare]").click()
    expect(row).to_have_count(0)
    assert not kb.shares.exists()
    response = guest.goto(f"{server.url}/kb/{kb.pk}/")
    assert response is not None and response.status == 404


def test_the_sidebar_pages_through_older_conversations(browser, live_server_url, client, alice):
    Conversation.objects.bulk_create(
        Conversation(owner=alice, title=f"Topic {i:03d}") for i in range(130)
    )
    server = live_server_url
    page = logged_in_context(browser, server, client, alice).new_page()
    page.goto(server.url + "/")
    items = page.locator("#conversation-list li[data-id]")
    expect(items).to_have_count(100)
    more = page.locator("#conversations-more")
    expect(more).to_be_visible()

    more.click()

    expect(items).to_have_count(130)
    expect(more).to_be_hidden()
    ids = page.eval_on_selector_all(
        "#conversation-list li[data-id]", "els => els.map(e => e.dataset.id)"
    )
    assert len(set(ids)) == 130  # no conversation twice
    page.fill("#conversation-search", "Topic 00")
    expect(items).to_have_count(10)
    expect(more).to_be_hidden()
