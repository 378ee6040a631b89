"""The database restarting under a running web process: the requests made while it is down
answer 503 with ``Retry-After`` and say what happened (JSON for the API, a page for a browser,
a retryable ``error`` + ``done`` for a streamed answer), and once it is back the same process
answers again: no restart of the web process, no 500.

Real parts: a PostgreSQL 18 of its own (``pgserver``) in a temporary folder, stopped and started
with ``pg_ctl``, and the web process (daphne) started as ``make run`` starts it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ROOT, running_daphne, subprocess_env

pgserver = pytest.importorskip("pgserver")

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SEED = """
from django.contrib.auth import get_user_model
from accounts.services import api_token_create
user = get_user_model().objects.create_user("dana", password="a long enough password 1")
_, plaintext = api_token_create(user=user, name="restart", scope="write")
print(plaintext)
"""


class Database:
    """A PostgreSQL of this test's own, which the test can stop and start."""

    def __init__(self, folder: Path) -> None:
        self.server = pgserver.get_server(folder, cleanup_mode="stop")
        self.folder = folder
        socket_dir = urllib.parse.parse_qs(urllib.parse.urlsplit(self.server.get_uri()).query)[
            "host"
        ][0]
        self.url = f"postgresql://postgres@{urllib.parse.quote(socket_dir, safe='')}/postgres"

    def stop(self) -> None:
        pgserver.pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.folder, user=self.server.system_user
        )

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture
def database() -> Iterator[Database]:
    # As root, pgserver runs PostgreSQL as its own system user, which must reach the folder:
    # pytest's tmp_path (under a 0700 /tmp/pytest-of-root) is out of its reach.
    parent = Path(tempfile.mkdtemp(prefix="raggen-pg-"))
    parent.chmod(0o711)
    db = Database(parent / "pg")
    try:
        yield db
    finally:
        db.server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def web(database: Database, tmp_path: Path) -> Iterator[dict[str, Any]]:
    data = tmp_path / "data"
    env = subprocess_env(
        DATABASE_URL=database.url,
        DATA_DIR=str(data),
        MEDIA_ROOT=str(data / "media"),
        INDEX_DIR=str(data / "index"),
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    token = (
        subprocess.run(
            [*manage, "shell", "--no-imports", "-c", SEED],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    with running_daphne(env, tmp_path / "web.log") as port:
        yield {"base": f"http://127.0.0.1:{port}", "token": token, "log": tmp_path / "web.log"}


def test_requests_answer_503_while_the_database_restarts_and_work_again_after(
    database: Database, web: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {web['token']}"}
    with httpx.Client(base_url=web["base"], headers=headers, timeout=30) as client:
        kb = client.post("/api/v1/knowledge-bases", json={"name": "Архив", "encoder": "local"})
        assert kb.status_code == 201, kb.text
        search = {"knowledge_base_ids": [kb.json()["id"]], "query": "договор", "mode": "keyword"}
        assert client.post("/api/v1/vectors/search", json=search).status_code == 200

        database.stop()

        down = client.post("/api/v1/vectors/search", json=search)
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/json")
        assert down.headers["retry-after"] == "5"
        assert down.json()["code"] == "database_unavailable"
        assert "database" in down.json()["detail"]

        # A browser with a session: its session is read from the database before any view.
        page = httpx.get(
            f"{web['base']}/kb/",
            cookies={"sessionid": "x" * 32},
            headers={"Accept": "text/html", "Accept-Language": "ru"},
            timeout=30,
        )
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert "База данных не отвечает" in page.text
        assert "Traceback" not in page.text

        # A streamed answer asked while the database is down: refused as a 503 before any event.
        ask = client.post(
            "/api/v1/conversations/1/messages", json={"content": "Что в договоре?", "stream": True}
        )
        assert ask.status_code == 503

        database.start()

        # The same web process answers again: a new connection per request.
        back = client.post("/api/v1/vectors/search", json=search)
        assert back.status_code == 200, back.text
        assert back.json()["hits"] == []
        assert client.get("/api/v1/knowledge-bases").json()[0]["name"] == "Архив"
    # Each refusal was logged as the database being unavailable, not as a crash.
    assert "database unavailable" in web["log"].read_text()
