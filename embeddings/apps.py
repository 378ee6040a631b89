"""The search engine is plain Python; the app stays installed only to keep its migration
history (its models moved to documents, see documents/migrations/0006_retrieval_models.py)."""

from __future__ import annotations

from django.apps import AppConfig


class EmbeddingsConfig(AppConfig):
    name = "embeddings"
    verbose_name = "Embeddings and search"
