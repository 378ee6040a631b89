"""The embedding cache: a vector is stored once per (model, sha256 of the exact text), so that
re-uploads, new versions of a document and the same file in two knowledge bases are never
encoded twice. Hits and misses are counted per process and, summed, in the database."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db.models import F

from documents.models import CacheCounter, CachedEmbedding
from embeddings.encoder import Encoder, Vectors

_LOOKUP_BATCH = 500
_BATCHES_PER_CALL = 8


@dataclass
class Counters:
    hits: int = 0
    misses: int = 0


_process_counters = Counters()
_counter_lock = threading.Lock()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def process_counters() -> Counters:
    """Hits and misses of this process since it started (a copy)."""
    with _counter_lock:
        return Counters(_process_counters.hits, _process_counters.misses)


def encode_cached(*, encoder: Encoder, texts: Sequence[str], batch_size: int = 64) -> Vectors:
    """Vectors of ``texts`` (row i for texts[i]) from the cache where present; the rest are
    encoded in batches of ``batch_size`` and stored. A text repeated within the call is encoded
    once. Cached vectors of another dimension under the same model name count as misses. At most
    ``8 * batch_size`` texts are held for one encoder call."""
    hashes = [text_sha256(t) for t in texts]
    dimension = encoder.dimension
    found = _lookup(encoder.name, dimension, sorted(set(hashes)))
    missing: dict[str, str] = {}
    for digest, text in zip(hashes, texts, strict=True):
        if digest not in found:
            missing.setdefault(digest, text)
    if missing:
        # Longest first and in slices of several batches, as SentenceTransformer.encode orders a
        # call's texts: batches of similar length need less padding (~1.5x faster than batches
        # in document order on SciFact abstracts).
        digests = sorted(missing, key=lambda d: -len(missing[d]))
        step = batch_size * _BATCHES_PER_CALL
        for start in range(0, len(digests), step):
            part = digests[start : start + step]
            vectors = encoder.encode([missing[d] for d in part])
            found.update(zip(part, vectors, strict=True))
            _store(encoder.name, dimension, part, vectors)
    _count(encoder.name, hits=len(texts) - len(missing), misses=len(missing))
    out = np.empty((len(texts), dimension), dtype=np.float32)
    for row, digest in enumerate(hashes):
        out[row] = found[digest]
    return out


def _lookup(model: str, dimension: int, digests: Sequence[str]) -> dict[str, Vectors]:
    found: dict[str, Vectors] = {}
    for start in range(0, len(digests), _LOOKUP_BATCH):
        rows = CachedEmbedding.objects.filter(
            model=model, dimension=dimension, text_sha256__in=digests[start : start + _LOOKUP_BATCH]
        ).values_list("text_sha256", "vector")
        for digest, blob in rows:
            vector = np.frombuffer(bytes(blob), dtype=np.float32)
            if vector.shape == (dimension,):
                found[digest] = vector
    return found


def _store(model: str, dimension: int, digests: Sequence[str], vectors: Vectors) -> None:
    # Another model version under the same name may have left a row of another dimension.
    CachedEmbedding.objects.filter(model=model, text_sha256__in=digests).exclude(
        dimension=dimension
    ).delete()
    CachedEmbedding.objects.bulk_create(
        [
            CachedEmbedding(
                model=model,
                text_sha256=d,
                dimension=dimension,
                vector=v.astype(np.float32).tobytes(),
            )
            for d, v in zip(digests, vectors, strict=True)
        ],
        ignore_conflicts=True,
        batch_size=_LOOKUP_BATCH,
    )


def _count(model: str, *, hits: int, misses: int) -> None:
    with _counter_lock:
        _process_counters.hits += hits
        _process_counters.misses += misses
    if hits or misses:
        updated = CacheCounter.objects.filter(model=model).update(
            hits=F("hits") + hits, misses=F("misses") + misses
        )
        if not updated:
            counter, created = CacheCounter.objects.get_or_create(
                model=model, defaults={"hits": hits, "misses": misses}
            )
            if not created:
                CacheCounter.objects.filter(pk=counter.pk).update(
                    hits=F("hits") + hits, misses=F("misses") + misses
                )


def cache_counts(*, model: str) -> tuple[int, int, int]:
    """(hits, misses, stored vectors) of ``model`` over every process."""
    counter = CacheCounter.objects.filter(model=model).first()
    entries = CachedEmbedding.objects.filter(model=model).count()
    if counter is None:
        return 0, 0, entries
    return counter.hits, counter.misses, entries
