"""Search on the local backend: each knowledge base's FAISS and BM25 segments
(``embeddings.store``, ``embeddings.keyword``), fused by ``embeddings.hybrid``, hydrated by
:func:`documents.retrieval.hits.hits_hydrate`.

Reached through :class:`documents.retrieval.backend.LocalBackend`; callers use
:func:`documents.retrieval.search`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _
from numpy.typing import NDArray

from core.errors import InvalidInput
from documents.models import Chunk, KnowledgeBase
from documents.retrieval.encoders import provider_errors, query_encoders
from documents.retrieval.encoders import query_vector as embed_query
from documents.retrieval.errors import EmbeddingProviderError
from documents.retrieval.hits import MODES, Mode, SearchResult, hits_hydrate
from documents.retrieval.local import snapshot, tokenize
from embeddings import hybrid, store
from embeddings.encoder import ANY_LANGUAGE, Encoder, Vectors
from embeddings.keyword import search as keyword_search

# How many chunks each side returns before fusion.
CANDIDATES = 100


def _allowed_ids(
    kbs: Sequence[KnowledgeBase],
    document_ids: Sequence[int] | None,
    file_types: Sequence[str] | None,
) -> NDArray[np.int64] | None:
    if document_ids is None and not file_types:
        return None
    rows = Chunk.objects.filter(knowledge_base__in=kbs)
    if document_ids is not None:
        rows = rows.filter(document_id__in=document_ids)
    if file_types:
        rows = rows.filter(document__file_type__in=file_types)
    return np.sort(np.fromiter(rows.values_list("id", flat=True), dtype=np.int64))


def search(
    *,
    knowledge_bases: Sequence[KnowledgeBase],
    query: str,
    mode: Mode = "hybrid",
    top_k: int = 10,
    min_score: float | None = None,
    dense_weight: float | None = None,
    keyword_weight: float | None = None,
    document_ids: Sequence[int] | None = None,
    file_types: Sequence[str] | None = None,
    candidates: int = CANDIDATES,
    query_vector: Sequence[float] | None = None,
    fusion: str = "convex",
) -> SearchResult:
    """The local backend's search: what :func:`documents.retrieval.search` documents (the
    one description of the parameters), on the knowledge bases' FAISS and BM25 folders."""
    if mode not in MODES:
        raise InvalidInput(
            _("Unknown search mode %(mode)r: use dense, keyword or hybrid.") % {"mode": mode}
        )
    if fusion not in hybrid.FUSIONS:
        raise InvalidInput(_("Unknown fusion %(fusion)r: use convex or rrf.") % {"fusion": fusion})
    if not query.strip() and (query_vector is None or mode != "dense"):
        raise InvalidInput(_("The query is empty."))
    if not knowledge_bases:
        return SearchResult([], mode, 0.0, 0.0, [])
    snapshots = [(kb, snapshot(kb)) for kb in knowledge_bases]
    notes: list[str] = []
    encoders = (
        query_encoders(knowledge_bases=list(knowledge_bases), notes=notes)
        if query_vector is None
        else {}
    )
    first = encoders.get(knowledge_bases[0].pk)
    languages = first.languages if first is not None else frozenset({ANY_LANGUAGE})
    weights = _weights(
        knowledge_bases[0], mode, query, dense_weight, keyword_weight, snapshots, languages
    )
    if weights.reason:
        notes.insert(0, weights.reason)
    allowed = _allowed_ids(knowledge_bases, document_ids, file_types)
    pool = max(candidates, top_k)
    dense_ranked: Sequence[tuple[int, float]] = []
    keyword_ranked: Sequence[tuple[int, float]] = []
    # A side with weight 0 in hybrid mode is not searched at all (e.g. a Russian query on an
    # English-only encoder: its query embedding would cost time and add nothing).
    if mode == "dense" or (mode == "hybrid" and weights.dense > 0):
        vector = _given_vector(query_vector)
        dense_ranked = _dense_side(
            snapshots, encoders, query, vector, pool, allowed, notes, strict=mode == "dense"
        )
    if mode == "keyword" or (mode == "hybrid" and weights.keyword > 0):
        tokens = tokenize(query)
        lists = [keyword_search(s.keyword_views(), tokens, pool, allowed) for _, s in snapshots]
        keyword_ranked = _merge_lists(lists, pool) if tokens else []
    if mode == "hybrid":
        # Only the best are turned into hits; the margin covers chunks deleted meanwhile.
        limit = 2 * top_k + 20
        fused = hybrid.fuse(dense_ranked, keyword_ranked, weights, method=fusion, limit=limit)
    else:
        fused = hybrid.single(dense_ranked if mode == "dense" else keyword_ranked, side=mode)
    if min_score is not None:
        fused = [h for h in fused if h.score >= min_score]
    hits = hits_hydrate(ranked=fused, top_k=top_k, fused_scores=mode == "hybrid")
    return SearchResult(hits, mode, weights.dense, weights.keyword, notes)


def _weights(
    kb: KnowledgeBase,
    mode: Mode,
    query: str,
    dense_weight: float | None,
    keyword_weight: float | None,
    snapshots: Sequence[tuple[KnowledgeBase, store.Snapshot]],
    encoder_languages: frozenset[str],
) -> hybrid.Weights:
    dense = kb.dense_weight if dense_weight is None else dense_weight
    keyword = kb.keyword_weight if keyword_weight is None else keyword_weight
    if mode != "hybrid":
        return hybrid.Weights(dense, keyword)
    return hybrid.effective_weights(
        dense,
        keyword,
        query_language=hybrid.text_language(query),
        corpus_languages=[
            hybrid.corpus_language(s.manifest.latin_tokens, s.manifest.cyrillic_tokens)
            for _, s in snapshots
        ],
        encoder_languages=encoder_languages,
    )


def _dense_side(
    snapshots: Sequence[tuple[KnowledgeBase, store.Snapshot]],
    encoders: dict[int, Encoder | None],
    query: str,
    given: Vectors | None,
    pool: int,
    allowed: NDArray[np.int64] | None,
    notes: list[str],
    *,
    strict: bool,
) -> Sequence[tuple[int, float]]:
    """Each knowledge base's nearest chunks to the query, embedded by its own query encoder
    (so a GigaChat knowledge base is searched with a GigaChat vector). A provider that fails
    skips its knowledge base with a note, or raises :class:`EmbeddingProviderError` when
    ``strict`` (dense mode: there is no keyword side to fall back on)."""
    lists = []
    for kb, snap in snapshots:
        encoder = encoders.get(kb.pk)
        if not snap.count:
            continue
        if given is not None:
            if len(given) != snap.manifest.dimension:
                raise InvalidInput(
                    _(
                        "The query vector has %(count)s dimensions; knowledge base %(id)s "
                        "holds %(dimension)s-dimensional vectors."
                    )
                    % {"count": len(given), "id": kb.pk, "dimension": snap.manifest.dimension},
                    {"expected_dimension": snap.manifest.dimension},
                )
            lists.append(
                store.dense_search(snap, given, pool, allowed, threads=settings.SEARCH_THREADS)
            )
        elif encoder is None:
            continue
        elif (snap.manifest.model, snap.manifest.dimension) == (encoder.name, encoder.dimension):
            try:
                with provider_errors(choice=kb.encoder):
                    vector = embed_query(encoder=encoder, query=query)
            except EmbeddingProviderError as exc:
                if strict:
                    raise
                notes.append(f"dense search of knowledge base {kb.pk} skipped: {exc.message}")
                continue
            lists.append(
                store.dense_search(snap, vector, pool, allowed, threads=settings.SEARCH_THREADS)
            )
        else:
            notes.append(
                f"knowledge base {kb.pk} was indexed with {snap.manifest.model}: dense search "
                "skipped until it is rebuilt"
            )
    return _merge_lists(lists, pool)


def _given_vector(values: Sequence[float] | None) -> Vectors | None:
    if values is None:
        return None
    vector = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if vector.ndim != 1 or not np.isfinite(vector).all() or norm == 0:
        raise InvalidInput(_("The query vector must be a non-zero list of finite numbers."))
    result: Vectors = vector / norm
    return result


def _merge_lists(
    lists: Sequence[Sequence[tuple[int, float]]], limit: int
) -> Sequence[tuple[int, float]]:
    if not lists:
        return []
    if len(lists) == 1:
        return lists[0]
    merged = [pair for ranked in lists for pair in ranked]
    merged.sort(key=lambda p: (-p[1], p[0]))
    return merged[:limit]
