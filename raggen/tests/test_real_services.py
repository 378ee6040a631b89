"""The real parts, really started: redis-server, a Celery worker process, daphne."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Origin

from conftest import running_daphne, start_celery_worker, stop_process, subprocess_env

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def celery_worker(
    redis_server: str, transactional_db: None, tmp_path: Path
) -> Iterator[dict[str, str]]:
    env = subprocess_env(REDIS_URL=redis_server)
    proc = start_celery_worker(env, tmp_path / "worker.log")
    try:
        yield env
    finally:
        stop_process(proc)


@pytest.mark.redis
@pytest.mark.celery
def test_a_celery_worker_process_runs_a_task_enqueued_through_the_app(celery_worker):
    result = subprocess.run(
        [sys.executable, "manage.py", "check_worker", "--timeout", "60"],
        cwd=ROOT,
        env=celery_worker,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("celery worker answered: host ")
    assert f"pid {os.getpid()}" not in line  # it ran in the worker, not here


@pytest.mark.redis
def test_check_worker_says_what_to_do_when_no_worker_runs(redis_server, transactional_db):
    env = subprocess_env(REDIS_URL=redis_server)
    result = subprocess.run(
        [sys.executable, "manage.py", "check_worker", "--timeout", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "is `make worker` running with the same REDIS_URL?" in result.stderr


@pytest.fixture
def daphne_on_redis(redis_server: str, transactional_db: None, tmp_path: Path) -> Iterator[int]:
    with running_daphne(subprocess_env(REDIS_URL=redis_server), tmp_path / "daphne.log") as port:
        yield port


@pytest.mark.redis
def test_websocket_round_trip_over_the_redis_channel_layer(
    daphne_on_redis, redis_server, alice, client, settings
):
    from documents.models import KnowledgeBase
    from documents.progress import ProgressManager

    kb = KnowledgeBase.objects.create(name="Contracts", owner=alice)
    client.force_login(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_server]},
        }
    }
    url = f"ws://127.0.0.1:{daphne_on_redis}/ws/kb/{kb.pk}/progress/"

    async def listen() -> dict[str, Any]:
        async with websockets.connect(
            url, additional_headers={"Cookie": cookie}, origin=Origin("http://127.0.0.1")
        ) as ws:
            # The server sends through Redis from this (other) process; retry until subscribed.
            for _ in range(50):
                await asyncio.to_thread(
                    ProgressManager(kb.pk).send, 7, "embedding", 42, pages_done=3
                )
                try:
                    message = await asyncio.wait_for(ws.recv(), timeout=0.2)
                    event: dict[str, Any] = json.loads(message)
                    return event
                except TimeoutError:
                    continue
        raise AssertionError("no progress event arrived over the websocket")

    event = asyncio.run(listen())
    assert event == {
        "type": "progress",
        "document_id": 7,
        "status": "embedding",
        "percent": 42,
        "pages_done": 3,
        "failure_reason": "",
    }


@pytest.mark.redis
def test_websocket_refuses_an_anonymous_user_with_4401(daphne_on_redis):
    async def connect() -> int | None:
        async with websockets.connect(
            f"ws://127.0.0.1:{daphne_on_redis}/ws/kb/1/progress/", origin=Origin("http://127.0.0.1")
        ) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert asyncio.run(connect()) == 4401


def test_the_app_boots_with_no_environment_at_all_and_serves_the_login_page(tmp_path):
    bare = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=bare,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    with running_daphne(bare, tmp_path / "daphne.log") as port:
        page = httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=30)
        home = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
        health = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30)
        css = httpx.get(f"http://127.0.0.1:{port}/static/css/raggen.css", timeout=30)
    assert page.status_code == 200
    assert 'name="password"' in page.text
    assert home.status_code == 302 and home.headers["location"].startswith("/accounts/login/")
    assert health.json()["status"] == "ok"
    assert css.status_code == 200
