"""The postgres search backend's extension, tables and indexes: created on PostgreSQL when
SEARCH_BACKEND=postgres, nothing otherwise (SQLite, or the local backend). Tables of vectors,
one per dimension, are created on demand; a deployment that switches to postgres later gets all
of it from ``manage.py rebuild_index --backend postgres``."""

from typing import Any

from django.conf import settings
from django.db import migrations

from documents.retrieval.postgres_schema import STATIC_DDL


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql" or settings.SEARCH_BACKEND != "postgres":
        return
    for statement in STATIC_DDL:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("documents", "0007_encoder_multilingual_default")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop, elidable=True)]
