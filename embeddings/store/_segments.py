"""Loaded segments (a FAISS index and the BM25 postings of the same chunks) and the immutable
snapshot one search sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings.keyword import KeywordSegment, KeywordView
from embeddings.store._manifest import Manifest

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128

IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Segment:
    """A loaded segment: the FAISS index and the BM25 postings of the same chunks."""

    name: str
    kind: str
    dense: Any
    keyword: KeywordSegment

    @property
    def ids(self) -> IntArray:
        return self.keyword.ids

    def vectors(self) -> NDArray[np.float32]:
        """All stored vectors, in the order of :attr:`ids` (FAISS keeps insertion order)."""
        n = int(self.dense.ntotal)
        if n == 0:
            return np.zeros((0, int(self.dense.d)), dtype=np.float32)
        return np.asarray(self.dense.index.reconstruct_n(0, n), dtype=np.float32)


@dataclass(frozen=True, eq=False)
class LiveSegment:
    segment: Segment
    deleted: IntArray
    keyword: KeywordView


@dataclass(frozen=True, eq=False)
class Snapshot:
    """What one search sees: immutable, safe to use from any thread while writers move on."""

    manifest: Manifest
    segments: tuple[LiveSegment, ...] = field(default=())
    exists: bool = True

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def count(self) -> int:
        return sum(s.live for s in self.manifest.segments)

    def keyword_views(self) -> list[KeywordView]:
        return [s.keyword for s in self.segments]


def load_faiss() -> Any:
    import faiss

    return faiss


def new_dense(dimension: int, kind: str) -> Any:
    faiss = load_faiss()
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        inner = faiss.IndexFlatIP(dimension)
    return faiss.IndexIDMap2(inner)
