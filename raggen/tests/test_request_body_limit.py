"""Request bodies are capped before they are buffered (issue 14, point 3).

The real web process (``python -m raggen.server``, as ``make run`` starts it) gets a 1 GB anonymous
upload, with a Content-Length and chunked, streamed from a generator (nothing builds a gigabyte
here either): it answers 413 and its memory stays within 100 MB of idle. The ASGI guard, the
second line under any other server, is checked on the application itself."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from conftest import ROOT, SERVER, collect_static, free_port, stop_process, subprocess_env
from conftest import wait_for_port as wait_for_server

GIB = 1024**3
MIB = 1024**2
PIECE = bytes(MIB)  # one MiB, sent again and again
UPLOAD_MAX_MB = 8
URL = "/api/v1/knowledge-bases/1/documents"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


class PeakRss:
    """Samples a process's resident memory from a side thread until the block ends."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (OSError, AssertionError):
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def gigabyte() -> Iterator[bytes]:
    """1 GiB in 1 MiB pieces, the same piece each time; bounded (1024 pieces at most)."""
    for _ in range(GIB // MIB):
        yield PIECE


@pytest.fixture
def server(transactional_db: None, tmp_path: Path, redis_server: str) -> Iterator[tuple[str, int]]:
    """The web process on a free loopback port: (base URL, pid). Uploads up to 8 MB. Tasks go
    to a Redis database of their own that no worker reads, so an accepted upload is only queued
    (no ingestion competes for the processor, no other test's worker picks it up)."""
    env = subprocess_env(
        UPLOAD_MAX_MB=str(UPLOAD_MAX_MB),
        REDIS_URL=redis_server.rsplit("/", 1)[0] + "/14",
        BACKGROUND_TASKS="celery",
    )
    collect_static(env)
    port = free_port()
    with (tmp_path / "server.log").open("w") as log:
        proc = subprocess.Popen(
            [*SERVER, "-b", "127.0.0.1", "-p", str(port), "raggen.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_server(port, timeout=60, proc=proc)
            yield f"http://127.0.0.1:{port}", proc.pid
        finally:
            stop_process(proc)


def idle_rss(base: str, pid: int) -> int:
    """The process's memory once warmed up: a page and a refused anonymous upload served."""
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.get("/healthz").status_code == 200
        http.post(URL, files={"files": ("a.txt", b"warm up")})
    time.sleep(0.5)
    return rss_bytes(pid)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_1_gb_anonymous_upload_is_refused_without_growing_the_process(server, framing):
    base, pid = server
    idle = idle_rss(base, pid)
    headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
    if framing == "content-length":
        headers["Content-Length"] = str(GIB)  # else httpx sends it chunked

    with PeakRss(pid) as memory, httpx.Client(base_url=base, timeout=60) as http:
        try:
            response: httpx.Response | httpx.HTTPError = http.post(
                URL, content=gigabyte(), headers=headers
            )
        except httpx.HTTPError as exc:
            response = exc

    assert memory.peak - idle < 100 * MIB, f"idle {idle // MIB} MB, peak {memory.peak // MIB} MB"
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200  # still serving


@pytest.mark.slow
@pytest.mark.redis
def test_an_upload_under_the_limit_still_works(server, alice):
    from accounts.services import api_token_create
    from documents.models import KnowledgeBase

    base, _ = server
    kb = KnowledgeBase.objects.create(owner=alice, name="Handbook")
    _, token = api_token_create(user=alice, name="upload", scope="write")
    text = ("A line of the handbook about holidays and notice periods.\n" * 20_000)[: 7 * MIB]

    response = httpx.post(
        f"{base}/api/v1/knowledge-bases/{kb.pk}/documents",
        files={"files": ("handbook.txt", text.encode())},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )

    assert response.status_code == 201, response.text
    assert response.json()["documents"][0]["name"] == "handbook.txt"


# --- the ASGI guard: the second line, under any server ---------------------------------------


async def call(app: Any, headers: list[tuple[bytes, bytes]], pieces: list[bytes]) -> list[Any]:
    """Runs one HTTP request through the ASGI ``app``; returns what it sent."""
    incoming = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    sent: list[Any] = []

    async def receive() -> Any:
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()  # the client stays connected (Django listens for this)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return sent


@pytest.fixture
def small_limit(settings: Any) -> int:
    settings.REQUEST_MAX_BYTES = 1000
    return 1000


@pytest.mark.django_db
async def test_the_application_refuses_a_declared_length_over_the_limit(small_limit):
    from raggen.asgi import application

    sent = await call(application, [(b"content-length", b"5000")], [b"x" * 10])

    assert sent[0]["status"] == 413
    assert b"request_too_large" in sent[1]["body"]


@pytest.mark.django_db
async def test_the_application_refuses_a_chunked_body_once_it_passes_the_limit(small_limit):
    from raggen.asgi import application

    sent = await call(application, [], [b"x" * 600, b"x" * 600, b"x" * 600])

    assert sent[0]["status"] == 413


@pytest.mark.django_db
async def test_the_application_serves_a_body_under_the_limit(small_limit):
    from raggen.asgi import application

    sent = await call(application, [(b"content-length", b"10")], [b"x" * 10])

    assert sent[0]["status"] != 413  # the view's own answer (anonymous: refused by the API)


def test_the_request_limit_is_the_upload_limit_plus_the_form_overhead():
    assert settings.REQUEST_MAX_BYTES == settings.UPLOAD_MAX_BYTES + MIB
