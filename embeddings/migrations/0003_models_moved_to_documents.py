"""The embeddings app's models moved to documents (documents 0006): state only, the tables stay.
The app keeps its migration history; it has no models any more."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("embeddings", "0002_cache_counter_chunk_metadata"),
        ("documents", "0006_retrieval_models"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="CachedEmbedding"),
                migrations.DeleteModel(name="CacheCounter"),
                migrations.DeleteModel(name="ChunkMetadata"),
            ],
            database_operations=[],
        ),
    ]
