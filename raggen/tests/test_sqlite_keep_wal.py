"""An SQLite file keeps its write-ahead log between short connections (no checkpoint and delete
on every close), and the receiver leaves other databases alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db.backends.signals import connection_created
from django.db.utils import ConnectionHandler

from conftest import subprocess_env
from raggen import sqlite

WAL = {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}


def _write_then_close(path: Path) -> None:
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": WAL}}
    )
    connection = handler["default"]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        cursor.execute("INSERT INTO t VALUES (1)")
    connection.close()


@pytest.fixture(autouse=True)
def own_databases(django_db_blocker: Any) -> Any:
    """These tests open their own SQLite files, not the test database."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def without_keeper() -> Any:
    connection_created.disconnect(dispatch_uid="raggen-sqlite-keep-wal")
    yield
    sqlite.connect()


@pytest.mark.usefixtures("without_keeper")
def test_without_the_keeper_closing_the_only_connection_deletes_the_log(tmp_path):
    _write_then_close(tmp_path / "plain.sqlite3")

    assert not (tmp_path / "plain.sqlite3-wal").exists()


def test_with_the_keeper_the_log_stays_and_holds_the_writes(tmp_path):
    path = tmp_path / "kept.sqlite3"

    _write_then_close(path)
    _write_then_close(path)

    assert (tmp_path / "kept.sqlite3-wal").exists()
    assert str(path.resolve()) in sqlite._keepers
    keeper = sqlite._keepers[str(path.resolve())]
    assert keeper.execute("SELECT count(*) FROM t").fetchone() == (2,)
    assert not keeper.in_transaction  # idle: it holds no lock
    keeper.close()
    del sqlite._keepers[str(path.resolve())]
    # The keeper was the last connection: closing it checkpointed and removed the log.
    assert not (tmp_path / "kept.sqlite3-wal").exists()


def test_in_memory_databases_get_no_keeper():
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    )
    before = dict(sqlite._keepers)
    with handler["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
    handler["default"].close()

    assert sqlite._keepers == before


_PROCESS = """
import os, django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE t (x INTEGER)")
    cursor.execute("INSERT INTO t VALUES (1)")
connection.close()
from raggen import sqlite
assert sqlite._keepers, "no keeper"
assert os.path.exists(os.environ["DB"] + "-wal")
os.remove(os.environ["DB"])  # as a test run removes its database
"""


def test_a_process_leaves_no_log_behind_when_it_exits(tmp_path):
    db = tmp_path / "gone.sqlite3"
    env = subprocess_env(DATABASE_URL=f"sqlite:///{db}", DB=str(db))

    subprocess.run([sys.executable, "-c", _PROCESS], env=env, check=True, timeout=120)

    assert sorted(p.name for p in tmp_path.iterdir()) == []
