"""The retrieval models moved from the embeddings app to documents with state-only migrations:
migrating a database of the old layout changes no table and loses no row, and the content types
(so the admin permissions) follow the models."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("documents", "0005_document_ingest_run"),
    ("embeddings", "0002_cache_counter_chunk_metadata"),
]
TABLES = ("embeddings_cachedembedding", "embeddings_cachecounter", "embeddings_chunkmetadata")
MOVED = ("cachedembedding", "cachecounter", "chunkmetadata")


def _migrate(targets: list[tuple[str, str]]) -> Any:
    """Migrate to ``targets``; the state's apps, with contenttypes and auth as they are now."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    leaves = [n for n in executor.loader.graph.leaf_nodes() if n[0] in ("auth", "contenttypes")]
    return executor.loader.project_state([*targets, *leaves]).apps


def _schema() -> dict[str, Any]:
    with connection.cursor() as cursor:
        return {
            table: (
                [
                    (c.name, c.type_code, c.null_ok)
                    for c in connection.introspection.get_table_description(cursor, table)
                ],
                sorted(
                    (
                        name,
                        tuple(c["columns"]),
                        c["primary_key"],
                        c["unique"],
                        bool(c["foreign_key"]),
                    )
                    for name, c in connection.introspection.get_constraints(cursor, table).items()
                ),
            )
            for table in TABLES
        }


def _rows() -> dict[str, list[tuple[Any, ...]]]:
    with connection.cursor() as cursor:
        out = {}
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {table} ORDER BY 1")
            out[table] = [
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                for row in cursor.fetchall()
            ]
        return out


def _fill(apps: Any) -> dict[str, int]:
    user = apps.get_model("auth", "User").objects.create(username="old-layout")
    kb = apps.get_model("documents", "KnowledgeBase").objects.create(owner=user, name="kb")
    document = apps.get_model("documents", "Document").objects.create(
        knowledge_base=kb, title="t", original_name="t.txt", file="", file_type="txt", sha256="0"
    )
    chunk = apps.get_model("documents", "Chunk").objects.create(
        document=document, knowledge_base=kb, ordinal=0, text="text", text_sha256="1"
    )
    apps.get_model("embeddings", "CachedEmbedding").objects.create(
        model="m", text_sha256="a" * 64, dimension=2, vector=b"\x00" * 8
    )
    apps.get_model("embeddings", "CacheCounter").objects.create(model="m", hits=3, misses=4)
    apps.get_model("embeddings", "ChunkMetadata").objects.create(chunk=chunk, data={"page": 2})
    content_type = apps.get_model("contenttypes", "ContentType")
    return {
        model: content_type.objects.get_or_create(app_label="embeddings", model=model)[0].pk
        for model in MOVED
    }


def test_moving_the_retrieval_models_changes_no_table_and_loses_no_row():
    old_apps = _migrate(BEFORE)
    old_content_types = _fill(old_apps)
    permission = old_apps.get_model("auth", "Permission").objects.create(
        name="Can view chunk metadata",
        codename="view_chunkmetadata_test",
        content_type_id=old_content_types["chunkmetadata"],
    )
    schema, rows = _schema(), _rows()

    executor = MigrationExecutor(connection)
    new_apps = _migrate(executor.loader.graph.leaf_nodes())

    assert _schema() == schema
    assert _rows() == rows
    assert all(len(r) == 1 for r in rows.values())
    content_type = new_apps.get_model("contenttypes", "ContentType")
    assert {
        model: content_type.objects.get(app_label="documents", model=model).pk for model in MOVED
    } == old_content_types
    assert not content_type.objects.filter(app_label="embeddings").exists()
    moved = new_apps.get_model("auth", "Permission").objects.get(pk=permission.pk)
    assert moved.content_type.app_label == "documents"
    assert new_apps.get_model("documents", "ChunkMetadata").objects.get().data == {"page": 2}


def test_the_multilingual_default_leaves_every_existing_knowledge_base_on_its_encoder():
    old_apps = _migrate([("documents", "0006_retrieval_models")])
    user = old_apps.get_model("auth", "User").objects.create(username="before-e5")
    old_kb = old_apps.get_model("documents", "KnowledgeBase")
    kept = {
        old_kb.objects.create(owner=user, name=name, **fields).pk: encoder
        for name, fields, encoder in (
            ("defaulted", {}, "local"),  # created with the old default
            ("chosen", {"encoder": "local", "embedding_model": "all-MiniLM-L6-v2"}, "local"),
            ("provider", {"encoder": "gigachat"}, "gigachat"),
        )
    }

    executor = MigrationExecutor(connection)
    new_apps = _migrate(executor.loader.graph.leaf_nodes())

    new_kb = new_apps.get_model("documents", "KnowledgeBase")
    assert dict(new_kb.objects.values_list("pk", "encoder")) == kept
    assert new_kb.objects.get(name="chosen").embedding_model == "all-MiniLM-L6-v2"
    assert new_kb.objects.create(owner_id=user.pk, name="new").encoder == "multilingual"
