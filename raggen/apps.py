from __future__ import annotations

from django.apps import AppConfig


class RaggenConfig(AppConfig):
    name = "raggen"
    verbose_name = "RAGGEN"

    def ready(self) -> None:
        from raggen import sqlite

        sqlite.connect()  # SQLite's write-ahead log stays between short connections
