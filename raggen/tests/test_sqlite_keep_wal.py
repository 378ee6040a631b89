"""An SQLite file keeps its write-ahead log between short connections (no checkpoint and delete
on every close), and the receiver leaves other databases alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db.backends.signals import connection_created
from django.db.utils import ConnectionHandler

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
    with pytest.raises(Exception, match="readonly"):
        keeper.execute("INSERT INTO t VALUES (3)")  # it only reads
    keeper.close()
    del sqlite._keepers[str(path.resolve())]


def test_in_memory_databases_get_no_keeper():
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    )
    before = dict(sqlite._keepers)
    with handler["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
    handler["default"].close()

    assert sqlite._keepers == before
