"""System checks of the documents app: the search backend's database."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.db import connections


@register()
def search_backend_database(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """SEARCH_BACKEND=postgres needs the database to be PostgreSQL (its tables live there)."""
    if settings.SEARCH_BACKEND != "postgres":
        return []
    vendor = connections["default"].vendor
    if vendor == "postgresql":
        return []
    return [
        Error(
            f"SEARCH_BACKEND=postgres needs a PostgreSQL database; this one is {vendor}.",
            hint=(
                "Set DATABASE_URL=postgresql://user:password@host:5432/name (PostgreSQL with "
                "the pgvector extension), or SEARCH_BACKEND=local."
            ),
            id="documents.E001",
        )
    ]
