"""The dense (FAISS) search over one snapshot's live chunks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings import keyword
from embeddings.store._segments import HNSW_EF_SEARCH, IntArray, Snapshot, load_faiss


@contextlib.contextmanager
def omp_threads(count: int) -> Iterator[None]:
    """FAISS's OpenMP threads for the calling thread while inside (0: unchanged). OpenMP keeps
    the setting per thread, so other threads (an ingestion building an index) keep theirs."""
    if count <= 0:
        yield
        return
    faiss = load_faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def dense_search(
    snapshot: Snapshot,
    query: NDArray[np.float32],
    top_k: int,
    allowed: IntArray | None = None,
    *,
    threads: int = 0,
) -> keyword.Ranking:
    """The ``top_k`` (chunk id, inner product) pairs over the live chunks, best first, ties by id;
    ``allowed`` restricts the search to those chunk ids. ``threads``: FAISS threads for this
    one query (0: FAISS's default, every core)."""
    with omp_threads(threads):
        return _dense_search(snapshot, query, top_k, allowed)


def _dense_search(
    snapshot: Snapshot, query: NDArray[np.float32], top_k: int, allowed: IntArray | None
) -> keyword.Ranking:
    faiss = load_faiss()
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    found_ids: list[IntArray] = []
    found_scores: list[NDArray[np.float32]] = []
    for live in snapshot.segments:
        seg = live.segment
        selector: Any = None
        limit = seg.keyword.size - len(live.deleted)
        if allowed is not None:
            candidates = np.setdiff1d(np.intersect1d(allowed, seg.ids), live.deleted)
            if not len(candidates):
                continue
            selector = faiss.IDSelectorBatch(candidates)
            limit = len(candidates)
        elif len(live.deleted):
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(live.deleted))
        k = min(top_k, limit)
        if k <= 0:
            continue
        if seg.kind == "hnsw":
            params: Any = faiss.SearchParametersHNSW(sel=selector, efSearch=max(HNSW_EF_SEARCH, k))
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        scores, ids = seg.dense.search(q, k, params=params)
        if ids[0, -1] < 0:  # fewer than k found: FAISS pads the end with -1
            keep = ids[0] >= 0
            found_ids.append(ids[0][keep])
            found_scores.append(scores[0][keep])
        else:
            found_ids.append(ids[0])
            found_scores.append(scores[0])
    if not found_ids:
        return keyword.Ranking()
    if len(found_ids) == 1:
        # FAISS returns one segment's best first; only ties may be out of id order.
        only_ids, only_scores = found_ids[0], found_scores[0]
        if (only_scores[1:] < only_scores[:-1]).all():
            return keyword.Ranking.of(only_ids.astype(np.int64), only_scores.astype(np.float64))
    return keyword.top_by_score(np.concatenate(found_ids), np.concatenate(found_scores), top_k)
