from __future__ import annotations

from django.apps import AppConfig
from django.core.checks import register


class RaggenConfig(AppConfig):
    name = "raggen"
    verbose_name = "RAGGEN"

    def ready(self) -> None:
        from raggen import checks, sqlite

        sqlite.connect()  # SQLite's write-ahead log stays between short connections
        register(checks.shared_state_check)
