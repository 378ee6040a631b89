"""Moving UsageRecord and ProviderSecret out of chat changes no table: a database migrated as on
main (the models in chat) keeps its tables, columns, indexes and rows when it is migrated to the
new apps, and the content types (so the admin permissions) follow the models."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from provider_settings.models import ProviderSecret
from usage.models import UsageRecord

CHAT_ON_MAIN = ("chat", "0004_provider_secret")
MAIN: list[tuple[str, str | None]] = [CHAT_ON_MAIN, ("usage", None), ("provider_settings", None)]
TABLES = ("chat_usagerecord", "chat_providersecret")
# The move itself (later migrations add columns of their own).
MOVED: list[tuple[str, str | None]] = [
    ("chat", "0005_usage_and_provider_settings_moved"),
    ("usage", "0001_initial"),
    ("provider_settings", "0001_initial"),
]


def _schema() -> dict[str, Any]:
    """Every table's name; for the two moved tables, their columns and constraints/indexes."""
    with connection.cursor() as cursor:
        found: dict[str, Any] = {"tables": sorted(connection.introspection.table_names(cursor))}
        for table in TABLES:
            found[table] = (
                [
                    (c.name, c.type_code, c.null_ok)
                    for c in connection.introspection.get_table_description(cursor, table)
                ],
                sorted(
                    (name, tuple(c["columns"]), c["primary_key"], c["unique"], c["index"])
                    for name, c in connection.introspection.get_constraints(cursor, table).items()
                ),
            )
    return found


def _migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    ContentType.objects.clear_cache()
    return executor


@pytest.mark.django_db(transaction=True)
def test_migrating_from_mains_schema_changes_no_table_and_keeps_the_rows(alice):
    executor = _migrate(MAIN)
    old = executor.loader.project_state([CHAT_ON_MAIN]).apps
    record = old.get_model("chat", "UsageRecord").objects.create(
        user_id=alice.pk, provider="offline", status="complete", prompt_tokens=7, question="Why?"
    )
    secret = old.get_model("chat", "ProviderSecret").objects.create(
        name="OPENAI_API_KEY", ciphertext="opaque", updated_by_id=alice.pk
    )
    usage_type = ContentType.objects.get(app_label="chat", model="usagerecord")
    secret_type = ContentType.objects.get(app_label="chat", model="providersecret")
    before = _schema()

    _migrate(MOVED)
    after_the_move = _schema()
    _migrate(executor.loader.graph.leaf_nodes())

    assert after_the_move == before
    moved = UsageRecord.objects.get(pk=record.pk)
    assert (moved.user_id, moved.prompt_tokens, moved.question) == (alice.pk, 7, "Why?")
    assert ProviderSecret.objects.get(pk=secret.pk).ciphertext == "opaque"
    assert ContentType.objects.get_for_model(UsageRecord).pk == usage_type.pk
    assert ContentType.objects.get_for_model(ProviderSecret).pk == secret_type.pk
    assert not ContentType.objects.filter(
        app_label="chat", model__in=("usagerecord", "providersecret")
    )
    assert Permission.objects.get(codename="view_usagerecord").content_type_id == usage_type.pk
