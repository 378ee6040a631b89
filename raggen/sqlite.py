"""SQLite: keep each database file's write-ahead log in place between connections.

With ``CONN_MAX_AGE=0`` every database round trip from async code (``database_sync_to_async``)
opens a connection and closes it after. When the connection that closes is the only one open on
the file, SQLite checkpoints the write-ahead log into the database and deletes it, and the next
writer creates it again: a round trip with one write measured 2.5-15.7 ms here (the fsync of the
checkpoint, so it depends on the disk), and 1.0 ms with the log kept. One idle connection per
file, held by the process, keeps the log in place; SQLite still checkpoints it as it grows
(every 1000 pages by default, on commit). It never writes, holds no lock while idle and takes no
part in transactions; it is opened read-write (not creating the file) only so that, closing
last, it can checkpoint and remove the log (a read-only connection leaves it). The keepers close
at exit, so that no log is left beside a database file that is gone (a test database), where a
new file of the same name would read it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)

_keepers: dict[str, sqlite3.Connection] = {}
_lock = threading.Lock()


def _file_of(connection: BaseDatabaseWrapper) -> str | None:
    """The database file of ``connection``, or None for an in-memory database."""
    name = str(connection.settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or "mode=memory" in name or name.startswith("file::memory:"):
        return None
    return str(Path(name).resolve())


def keep_wal_open(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """``connection_created`` receiver: the first time a SQLite file is connected to in this
    process, open the idle connection that keeps its write-ahead log."""
    if connection.vendor != "sqlite":
        return
    path = _file_of(connection)
    if path is None or path in _keepers:
        return
    with _lock:
        if path in _keepers:
            return
        try:
            keeper = sqlite3.connect(
                f"{Path(path).as_uri()}?mode=rw", uri=True, check_same_thread=False
            )
            keeper.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # open the log now
        except sqlite3.Error:
            logger.warning("could not keep the write-ahead log of %s open", path, exc_info=True)
            return
        _keepers[path] = keeper


def close_keepers() -> None:
    """Close every keeper (at exit). Closing last, a keeper checkpoints and removes the log; of
    a database file deleted meanwhile (a test run's), SQLite leaves the log and its index, so
    they are removed here: a new database of the same name must not read them."""
    with _lock:
        for path, keeper in _keepers.items():
            with contextlib.suppress(sqlite3.Error):
                keeper.close()
            if not Path(path).exists():
                for leftover in (Path(f"{path}-wal"), Path(f"{path}-shm")):
                    with contextlib.suppress(OSError):
                        leftover.unlink(missing_ok=True)
        _keepers.clear()


def connect() -> None:
    """Keep the log of every SQLite file connected to from now on (the app's ready), until
    the process exits."""
    connection_created.connect(keep_wal_open, dispatch_uid="raggen-sqlite-keep-wal")
    atexit.register(close_keepers)
