"""The postgres search backend's schema: the extension, the static tables and indexes, one
table of vectors per dimension (created on demand), and the check that the database is
PostgreSQL. Used by :mod:`documents.retrieval.postgres`, its search and the migration
``documents/0008``."""

from __future__ import annotations

import numpy as np
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from numpy.typing import NDArray

#: The text search configuration of the keyword column: Cyrillic words through ``russian_stem``,
#: ASCII words through ``english_stem`` (the ``english`` configuration's dictionary), numbers as
#: they are; each with its language's stop words.
TS_CONFIG = "russian"

#: The tables and indexes that do not depend on a dimension (created by the migration
#: documents/0008 on PostgreSQL when SEARCH_BACKEND=postgres, or by the first write).
STATIC_DDL = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    """CREATE TABLE IF NOT EXISTS raggen_search_kb (
        kb_id bigint PRIMARY KEY,
        model text NOT NULL DEFAULT '',
        dimension integer NOT NULL DEFAULT 0,
        chunks bigint NOT NULL DEFAULT 0,
        total_length bigint NOT NULL DEFAULT 0,
        latin_tokens bigint NOT NULL DEFAULT 0,
        cyrillic_tokens bigint NOT NULL DEFAULT 0,
        version bigint NOT NULL DEFAULT 0
    )""",
    f"""CREATE TABLE IF NOT EXISTS raggen_search_chunk (
        chunk_id bigint PRIMARY KEY,
        kb_id bigint NOT NULL,
        keyword_text text NOT NULL,
        tsv tsvector GENERATED ALWAYS AS (to_tsvector('{TS_CONFIG}', keyword_text)) STORED,
        length integer NOT NULL,
        latin_tokens integer NOT NULL,
        cyrillic_tokens integer NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS raggen_search_chunk_tsv ON raggen_search_chunk USING gin (tsv)",
    "CREATE INDEX IF NOT EXISTS raggen_search_chunk_kb ON raggen_search_chunk (kb_id, chunk_id)",
)


def vector_table(dimension: int) -> str:
    return f"raggen_search_vec_{int(dimension)}"


def _vector_ddl(dimension: int) -> tuple[str, ...]:
    table = vector_table(dimension)
    return (
        f"""CREATE TABLE IF NOT EXISTS {table} (
            chunk_id bigint PRIMARY KEY,
            kb_id bigint NOT NULL,
            embedding vector({int(dimension)}) NOT NULL
        )""",
        f"CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} USING hnsw (embedding vector_ip_ops)",
        f"CREATE INDEX IF NOT EXISTS {table}_kb ON {table} (kb_id)",
    )


def check_database() -> None:
    """Raise :class:`ImproperlyConfigured`, saying what to do, unless the database is
    PostgreSQL (the postgres backend keeps its tables beside the chunk rows)."""
    if connection.vendor != "postgresql":
        raise ImproperlyConfigured(
            "SEARCH_BACKEND=postgres needs DATABASE_URL to name a PostgreSQL database with the "
            "pgvector extension (postgresql://user:password@host:5432/name); this one is "
            f"{connection.vendor}. Set DATABASE_URL, or SEARCH_BACKEND=local."
        )


def ensure_schema(dimension: int | None = None) -> None:
    """Create what is missing: the extension and static tables, and the table of ``dimension``
    (idempotent; one query when all is there: a table created in a transaction that was rolled
    back is gone, so nothing is remembered)."""
    check_database()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass('raggen_search_chunk') IS NOT NULL, to_regclass(%s) IS NOT NULL",
            [vector_table(dimension or 0)],
        )
        static, vectors = cursor.fetchone()
    if static and (dimension is None or vectors):
        return
    with transaction.atomic(), connection.cursor() as cursor:
        # One creator at a time: two workers creating one table would otherwise collide.
        cursor.execute("SELECT pg_advisory_xact_lock(7216001)")
        for statement in (*STATIC_DDL, *(() if dimension is None else _vector_ddl(dimension))):
            cursor.execute(statement)


def vector_literal(vector: NDArray[np.float32]) -> str:
    """A float32 vector as pgvector's text form; exact (float32 -> repr -> float4)."""
    return "[" + ",".join(map(repr, np.asarray(vector, dtype=np.float32).tolist())) + "]"
