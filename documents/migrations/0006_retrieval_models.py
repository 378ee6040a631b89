"""The embedding cache and the vector API's chunk metadata move from the embeddings app to
documents (the Django side of retrieval, documents/retrieval/). State only: the tables keep
their names (``db_table``) and their rows; no SQL runs. Their content types are renamed so
that admin permissions follow the models."""

import django.db.models.deletion
from django.db import migrations, models

MOVED = ("cachedembedding", "cachecounter", "chunkmetadata")


def _rename_content_types(apps, schema_editor, source, target):
    content_type = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MOVED:
        if content_type.objects.using(db).filter(app_label=target, model=model).exists():
            # Created meanwhile (post_migrate of an earlier run): the old row has nothing to add.
            content_type.objects.using(db).filter(app_label=source, model=model).delete()
        else:
            content_type.objects.using(db).filter(app_label=source, model=model).update(
                app_label=target
            )


def forwards(apps, schema_editor):
    _rename_content_types(apps, schema_editor, "embeddings", "documents")


def backwards(apps, schema_editor):
    _rename_content_types(apps, schema_editor, "documents", "embeddings")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("documents", "0005_document_ingest_run"),
        ("embeddings", "0002_cache_counter_chunk_metadata"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="CachedEmbedding",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("model", models.CharField(max_length=200)),
                        ("text_sha256", models.CharField(max_length=64)),
                        ("dimension", models.PositiveIntegerField()),
                        ("vector", models.BinaryField()),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "db_table": "embeddings_cachedembedding",
                        "constraints": [models.UniqueConstraint(fields=("model", "text_sha256"), name="embedding_cache_key")],
                    },
                ),
                migrations.CreateModel(
                    name="CacheCounter",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("model", models.CharField(max_length=200, unique=True)),
                        ("hits", models.PositiveBigIntegerField(default=0)),
                        ("misses", models.PositiveBigIntegerField(default=0)),
                    ],
                    options={"db_table": "embeddings_cachecounter"},
                ),
                migrations.CreateModel(
                    name="ChunkMetadata",
                    fields=[
                        ("chunk", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name="metadata", serialize=False, to="documents.chunk")),
                        ("data", models.JSONField(default=dict)),
                    ],
                    options={"db_table": "embeddings_chunkmetadata"},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
