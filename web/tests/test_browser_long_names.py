"""A 240-character file name never widens the page: the document table, the document page and
the delete dialog stay within the screen at phone and desktop widths (headless Chromium)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import expect

from documents import services
from documents.models import Document, KnowledgeBase
from web.tests.conftest import logged_in_context

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# One long "word" (no spaces: the worst case for wrapping) and a long name with spaces.
UNBROKEN = ("Протокол_заседания_комиссии_по_охране_труда_" * 6)[:240] + ".txt"
SPACED = ("Протокол заседания комиссии по вопросам охраны труда " * 5)[:240] + ".txt"
FITS = "() => document.documentElement.scrollWidth <= window.innerWidth"


def _upload(kb: KnowledgeBase, user: Any, name: str, data: bytes) -> Document:
    """Through the upload service, on a thread of its own: Playwright's event loop runs in
    this one, and the service announces the new document through ``async_to_sync``."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(
            lambda: (
                services.document_upload(
                    knowledge_base=kb, user=user, name=name, chunks=[data], queue=False
                ).document
            )
        ).result(timeout=60)


def _dialog_fits(page: Any) -> bool:
    box = page.locator("#confirm-dialog").bounding_box()
    width = page.evaluate("window.innerWidth")
    return bool(box and box["x"] >= 0 and box["x"] + box["width"] <= width)


@pytest.mark.parametrize("width", [375, 1280])
def test_long_file_names_never_widen_the_page(browser, live_server_url, client, alice, width):
    server = live_server_url
    kb = KnowledgeBase.objects.create(owner=alice, name="Протоколы")
    documents = [
        _upload(kb, alice, name, data) for name, data in ((UNBROKEN, b"A."), (SPACED, b"B."))
    ]
    context = logged_in_context(
        browser, server, client, alice, viewport={"width": width, "height": 800}
    )
    page = context.new_page()
    page.goto(f"{server.url}/kb/{kb.pk}/")
    expect(page.locator("#doc-rows tr[data-id]")).to_have_count(2)
    assert page.evaluate(FITS), "the document table widens the page"

    # An upload in progress shows the raw (unshortened) file name in its row; this one repeats
    # a document's content, so its row ends with a refusal that names both long names.
    page.set_input_files(
        "#file-input", files=[{"name": "x" + UNBROKEN, "mimeType": "text/plain", "buffer": b"B."}]
    )
    expect(page.locator("#doc-rows tr")).to_have_count(3)
    assert page.evaluate(FITS), "an uploading row widens the page"
    expect(page.locator("#doc-rows tr.uploading .failure-reason")).to_contain_text("xПротокол")
    assert page.evaluate(FITS), "a refusal naming the file widens the page"

    page.locator(f'#doc-rows tr[data-id="{documents[0].pk}"] [data-action=delete]').click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    assert page.evaluate(FITS) and _dialog_fits(page), "the delete dialog is wider than the screen"
    page.locator("#confirm-dialog button[value=cancel]").click()

    page.goto(f"{server.url}/documents/{documents[0].pk}/")
    assert page.evaluate(FITS), "the document page widens the page"
    context.close()
