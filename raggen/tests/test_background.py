from __future__ import annotations

import io
from concurrent.futures import Future

import pytest
from django.core.management import call_command

from core import background
from core.background import enqueue
from raggen.tasks import worker_ping_task


def test_thread_mode_runs_the_task_off_the_calling_thread(settings):
    settings.BACKGROUND_TASKS = "thread"
    future = enqueue(worker_ping_task, "n1")
    assert isinstance(future, Future)
    assert future.result(timeout=10)["nonce"] == "n1"


@pytest.mark.django_db
def test_eager_mode_runs_at_once_and_counts_the_task(settings, client):
    settings.BACKGROUND_TASKS = "eager"
    assert enqueue(worker_ping_task, "n2") is None
    metrics = client.get("/metrics").content.decode()
    assert 'raggen_tasks_total{outcome="success",task="raggen.worker_ping"}' in metrics


@pytest.mark.django_db
def test_check_worker_reports_the_in_process_pool(settings):
    settings.BACKGROUND_TASKS = "thread"
    out = io.StringIO()
    call_command("check_worker", stdout=out)
    assert out.getvalue().startswith("thread worker answered")


SWEEPER_PROBE = """
import asyncio, os, sys, threading
os.environ["DJANGO_SETTINGS_MODULE"] = "raggen.settings"
from raggen.asgi import application
from asgiref.testing import ApplicationCommunicator

def sweepers():
    return [t.name for t in threading.enumerate() if t.name == "raggen-ingest-sweeper"]

before = sweepers()
async def get_healthz():
    scope = {"type": "http", "method": "GET", "path": "/healthz", "query_string": b"",
             "headers": [(b"host", b"localhost")], "http_version": "1.1", "scheme": "http",
             "server": ("localhost", 80), "client": ("127.0.0.1", 1)}
    app = ApplicationCommunicator(application, scope)
    await app.send_input({"type": "http.request", "body": b""})
    start = await app.receive_output(10)
    await app.receive_output(10)
    return start["status"]
status = asyncio.run(get_healthz())
print(before, status, sweepers())
"""


def test_the_in_process_sweeper_starts_with_the_first_request_not_at_import(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {"PATH": os.environ.get("PATH", ""), "DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", SWEEPER_PROBE],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[] 200 ['raggen-ingest-sweeper']"


@pytest.fixture
def registry(monkeypatch):
    """An empty registry of periodic jobs, so nothing the test starts touches the real ones."""
    monkeypatch.setattr(background, "_periodic", {})
    monkeypatch.setattr(background, "_periodic_started", {})
    return background


def test_the_celery_worker_starts_the_registered_jobs_when_ready(registry):
    from raggen.celery import _on_worker_ready

    calls: list[int] = []
    registry.periodic_register(
        name="worker-job", job=lambda: calls.append(1), interval=lambda: 3600
    )

    _on_worker_ready()

    assert calls == [1]
    assert "worker-job" in registry._periodic_started
