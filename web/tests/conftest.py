"""Browser fixtures: a real daphne serving the app (in-memory channel layer, tasks on its thread
pool, the real embedding model), a scripted fake OpenAI-compatible server for slow answers, and
Debian's headless Chromium driven by Playwright. Never downloads a browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import running_daphne, subprocess_env
from providers.fakes import OpenAIFake, Script

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
SLOW_ANSWER = [f"word{i} " for i in range(400)]


@dataclass
class Server:
    url: str
    fake: OpenAIFake
    log: Path


@pytest.fixture
def slow_llm() -> Iterator[OpenAIFake]:
    """An OpenAI-compatible fake that streams a long answer slowly (for stopping it)."""
    fake = OpenAIFake(0)
    fake.script = Script(tokens=SLOW_ANSWER, first_token_delay=0.2, token_delay=0.1)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def live_server_url(
    transactional_db: None, slow_llm: OpenAIFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Server]:
    """daphne on a free port, sharing this test's database and files. No REDIS_URL: the
    in-memory channel layer and the thread pool, as ``make run`` has them."""
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    env = subprocess_env(
        REDIS_URL="",
        BACKGROUND_TASKS="thread",
        OPENAI_BASE_URL=f"{slow_llm.url}/v1",
        OPENAI_MODEL=slow_llm.models[0],
        DEFAULT_PROVIDER="offline",
        LOG_LEVEL="warning",
    )
    log_path = tmp_path / "daphne.log"
    with running_daphne(env, log_path) as port:
        yield Server(f"http://127.0.0.1:{port}", slow_llm, log_path)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian Chromium; skips, saying how to install it, where it is missing."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def shot(tmp_path: Path) -> Any:
    """``shot(page, name)``: a screenshot, into docs/screenshots/ when RAGGEN_SCREENSHOTS=1
    (so that a normal test run leaves the repository alone), else into the test's folder."""
    folder = SCREENSHOTS if os.environ.get("RAGGEN_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str, full_page: bool = False) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


def logged_in_context(browser: Any, server: Server, client: Any, user: Any, **options: Any) -> Any:
    """A browser context carrying ``user``'s session cookie."""
    client.force_login(user)
    context = browser.new_context(**options)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": server.url}]
    )
    return context
