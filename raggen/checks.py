"""System checks (``manage.py check``) for an instance served by several hosts.

``STORAGE_URL`` says that uploaded files live off the host, which is only worth it when several
hosts serve one instance; what would then still differ from host to host is warned about here
(docs/STORAGE.md lists what lives where)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import Warning


def _generated_secret_key() -> bool:
    try:
        stored = (Path(settings.DATA_DIR) / "secret_key").read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return bool(stored) and stored == settings.SECRET_KEY


def shared_state_check(**kwargs: Any) -> list[Warning]:
    """With ``STORAGE_URL``: a generated secret key, SQLite and a missing Redis are per host."""
    if not settings.STORAGE_URL:
        return []
    warnings: list[Warning] = []
    if _generated_secret_key():
        warnings.append(
            Warning(
                "SECRET_KEY was generated into DATA_DIR/secret_key: each host has its own, so "
                "a session signed by one host is refused by the next.",
                hint="Set SECRET_KEY (or SECRET_KEY_FILE) to the same value on every host.",
                id="raggen.W001",
            )
        )
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        warnings.append(
            Warning(
                "The database is SQLite under DATA_DIR: each host has its own.",
                hint="Set DATABASE_URL to a PostgreSQL database that every host reaches.",
                id="raggen.W002",
            )
        )
    if not settings.REDIS_URL:
        warnings.append(
            Warning(
                "REDIS_URL is unset: tasks, progress events and rate limits stay in each process.",
                hint="Set REDIS_URL to a Redis that every host reaches.",
                id="raggen.W003",
            )
        )
    return warnings
