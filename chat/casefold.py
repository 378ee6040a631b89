"""Case-insensitive matching beyond ASCII, without a migration.

SQLite's ``LIKE``, ``LOWER`` and ``UPPER`` fold ASCII letters only, so ``icontains`` does not find
«договор» in «Договор». :class:`Casefold` folds a text expression the same way on every backend
we run: on SQLite through a Python function (``str.casefold``) registered on each new connection,
elsewhere through ``LOWER``, which PostgreSQL applies to every letter in a UTF-8 locale (C.UTF-8
included).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models import Func, TextField
from django.db.models.sql.compiler import SQLCompiler

SQLITE_FUNCTION = "raggen_casefold"


def _casefold(value: str | None) -> str | None:
    return None if value is None else str(value).casefold()


def register_sqlite_function(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """``connection_created`` receiver: give a new SQLite connection :data:`SQLITE_FUNCTION`."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_FUNCTION, 1, _casefold, deterministic=True)


def connect() -> None:
    """Register on every SQLite connection opened from now on (called from the app's ready)."""
    connection_created.connect(register_sqlite_function, dispatch_uid="raggen-casefold")


class Casefold(Func):
    """The text expression folded to one case, for comparisons that ignore case in any
    script: ``Casefold("title")`` contains ``Casefold(Value(query))``."""

    function = "LOWER"
    output_field = TextField()

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        sql, params = self.as_sql(compiler, connection, function=SQLITE_FUNCTION, **extra_context)
        return sql, list(params)
