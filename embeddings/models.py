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


class CacheCounter(models.Model):
    """How often the cache of one model answered (hits) or the model had to encode (misses),
    summed over every process."""

    model = models.CharField(max_length=200, unique=True)
    hits = models.PositiveBigIntegerField(default=0)
    misses = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.model}: {self.hits} hits, {self.misses} misses"


class ChunkMetadata(models.Model):
    """Free-form metadata given with texts added through the vector API."""

    chunk = models.OneToOneField(
        "documents.Chunk", on_delete=models.CASCADE, primary_key=True, related_name="metadata"
    )
    data = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"metadata of chunk {self.chunk_id}"
