"""Every page, rendered through Django's test client: what it shows, to whom."""

from __future__ import annotations

import json
import re

import pytest

from web.js_urls import js_urls
from web.tests.factories import make_chunk, make_conversation, make_document, make_kb

pytestmark = pytest.mark.django_db


def _json_script(html: str, element_id: str) -> object:
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, f"no json_script {element_id}"
    return json.loads(match.group(1))


@pytest.mark.parametrize("path", ["/", "/c/1/", "/kb/", "/kb/1/", "/documents/1/"])
def test_pages_send_an_anonymous_visitor_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_chat_page_lists_own_conversations_knowledge_bases_and_providers(alice_client, alice, bob):
    make_conversation(alice, "Alice's question")
    make_conversation(bob, "Bob's secret")
    make_kb(alice, "Alice handbook")
    make_kb(bob, "Bob handbook")

    response = alice_client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Alice&#x27;s question" in html
    assert "Bob" not in html
    assert "Alice handbook" in html
    assert 'id="composer-input"' in html
    state = _json_script(html, "chat-state")
    assert isinstance(state, dict)
    assert state["conversation"] is None
    offline = next(p for p in state["providers"] if p["name"] == "offline")
    assert offline["configured"] is True


def test_chat_page_of_a_conversation_carries_its_settings_and_export_links(alice_client, alice):
    kb = make_kb(alice)
    conversation = make_conversation(alice, params={"temperature": 0.7})
    conversation.knowledge_bases.add(kb)

    response = alice_client.get(f"/c/{conversation.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    state = _json_script(html, "chat-state")
    assert isinstance(state, dict)
    assert state["conversation"]["knowledge_base_ids"] == [kb.pk]
    assert state["conversation"]["params"] == {"temperature": 0.7}
    # chat.js points the export links at the conversation, from the page's URL map.
    for fmt in ("markdown", "json", "pdf"):
        assert f'id="export-{fmt}" data-export-format="{fmt}" download hidden' in html
    urls = _json_script(html, "raggen-urls")
    assert isinstance(urls, dict)
    assert urls["api.conversationExport"] == "/api/v1/conversations/{conversation_id}/export"


def test_the_pages_with_javascript_carry_the_url_map(alice_client, alice):
    kb = make_kb(alice)
    for path in ("/", "/kb/", f"/kb/{kb.pk}/"):
        html = alice_client.get(path).content.decode()
        assert _json_script(html, "raggen-urls") == js_urls(), path


def test_someone_elses_conversation_is_not_found(alice_client, bob):
    conversation = make_conversation(bob)
    assert alice_client.get(f"/c/{conversation.pk}/").status_code == 404


def test_knowledge_base_list_shows_own_bases_with_document_counts(alice_client, alice, bob):
    kb = make_kb(alice, "Policies")
    make_document(kb, "leave")
    make_kb(bob, "Bob only")

    html = alice_client.get("/kb/").content.decode()

    assert "Policies" in html
    assert "1 document" in html
    assert "Bob only" not in html
    assert 'id="kb-create-form"' in html
    assert 'id="confirm-dialog"' in html


def test_knowledge_base_page_shows_documents_status_failure_and_panels(alice_client, alice):
    kb = make_kb(alice, "Policies")
    make_document(kb, "leave")
    make_document(
        kb, "broken", status="failed", progress=10, failure_reason="The PDF is encrypted."
    )

    html = alice_client.get(f"/kb/{kb.pk}/").content.decode()

    assert f'data-kb-id="{kb.pk}"' in html
    assert "leave" in html
    assert "Indexed" in html
    assert "The PDF is encrypted." in html
    assert 'id="drop-zone"' in html
    assert 'id="search-form"' in html
    assert 'id="kb-settings-form"' in html
    i18n = _json_script(html, "raggen-i18n")
    assert isinstance(i18n, dict)
    assert i18n["status_indexed"] == "Indexed"


def test_someone_elses_knowledge_base_and_document_are_not_found(alice_client, bob):
    kb = make_kb(bob)
    document = make_document(kb)
    assert alice_client.get(f"/kb/{kb.pk}/").status_code == 404
    assert alice_client.get(f"/documents/{document.pk}/").status_code == 404


def test_document_page_shows_chunks_with_pages_and_a_link_to_the_page(alice_client, alice):
    document = make_document(make_kb(alice), "guide")
    make_chunk(document, "Holidays are 28 days a year.", page=2)

    html = alice_client.get(f"/documents/{document.pk}/").content.decode()

    assert "Holidays are 28 days a year." in html
    assert "page 2" in html
    assert f"/api/v1/documents/{document.pk}/file#page=2" in html


def test_document_page_escapes_document_text(alice_client, alice):
    document = make_document(make_kb(alice), "evil")
    make_chunk(document, "<script>alert(1)</script>")

    html = alice_client.get(f"/documents/{document.pk}/").content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_document_page_paginates_chunks(alice_client, alice):
    document = make_document(make_kb(alice))
    for i in range(55):
        make_chunk(document, f"passage number {i}", ordinal=i)

    first = alice_client.get(f"/documents/{document.pk}/").content.decode()
    second = alice_client.get(f"/documents/{document.pk}/?page=2").content.decode()

    assert "passage number 49" in first
    assert "passage number 54" not in first
    assert "passage number 54" in second


def test_login_page_renders_in_the_site_layout(client):
    html = client.get("/accounts/login/").content.decode()
    assert 'id="theme-toggle"' in html
    assert 'id="language-select"' in html


def test_pages_use_only_local_assets(alice_client, alice):
    kb = make_kb(alice)
    document = make_document(kb)
    for path in ["/", "/kb/", f"/kb/{kb.pk}/", f"/documents/{document.pk}/", "/accounts/login/"]:
        html = alice_client.get(path).content.decode()
        for src in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert not src.startswith(("http:", "https:", "//")), (path, src)


def test_chat_page_queries_do_not_grow_with_conversations(
    alice_client, alice, django_assert_max_num_queries
):
    for i in range(20):
        make_conversation(alice, f"Question {i}").knowledge_bases.add(make_kb(alice, f"KB {i}"))
    with django_assert_max_num_queries(12):
        assert alice_client.get("/").status_code == 200


def test_knowledge_base_page_queries_do_not_grow_with_documents(
    alice_client, alice, django_assert_max_num_queries
):
    kb = make_kb(alice)
    for i in range(20):
        make_document(kb, f"doc{i}")
    with django_assert_max_num_queries(10):
        assert alice_client.get(f"/kb/{kb.pk}/").status_code == 200


def test_the_chat_page_offers_knowledge_bases_shared_with_the_user_naming_their_owner(
    alice, bob, client
):
    from documents import services

    shared = make_kb(alice, "Alice's policies")
    make_kb(bob, "Bob's notes")
    services.knowledge_base_share(knowledge_base=shared, actor=alice, user="bob", role="viewer")
    client.force_login(bob)

    html = client.get("/").content.decode()

    labels = re.findall(r'name="kb" value="\d+"> ([^<]+) <span class="muted">\(([^)]*)\)', html)
    assert labels == [("Alice&#x27;s policies", "0 · alice"), ("Bob&#x27;s notes", "0")]
