"""The embedding cache: a vector is keyed by (model, sha256 of the exact text)."""

from __future__ import annotations

from django.db import models


class CachedEmbedding(models.Model):
    model = models.CharField(max_length=200)
    text_sha256 = models.CharField(max_length=64)
    dimension = models.PositiveIntegerField()
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("model", "text_sha256"), name="embedding_cache_key"),
        )

    def __str__(self) -> str:
        return f"{self.model}:{self.text_sha256[:12]}"
