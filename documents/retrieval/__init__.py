"""Retrieval, the Django side: what the rest of the product calls to make chunks searchable and
to search them. Every operation goes through the configured search backend
(:func:`documents.retrieval.backend.get_backend`, ``SEARCH_BACKEND``), so a new backend needs no
change here or in any caller. The engine below (``embeddings``) takes ids, texts and arrays.

Ingestion calls :func:`index_chunks` / :func:`remove_document`; chat and the API call
:func:`search`; operators call :func:`rebuild_index` (``manage.py rebuild_index``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from documents.models import Chunk, KnowledgeBase
from documents.retrieval.backend import SearchBackend, get_backend
from documents.retrieval.cache import text_sha256
from documents.retrieval.encoders import (
    ENCODERS,
    EncoderInfo,
    check_encoder,
    encoder_choices,
    encoder_for,
    encoder_state,
    get_encoder,
    get_multilingual_encoder,
    query_encoder_for,
    query_vector,
    sentence_encoders,
    serving_choice,
    use_encoder,
)
from documents.retrieval.errors import (
    EmbeddingProviderError,
    EmbeddingProviderUnavailable,
    EncoderNotConfigured,
    ModelChanged,
)
from documents.retrieval.hits import (
    MODES,
    IndexStats,
    Mode,
    Progress,
    Rebuilt,
    SearchHit,
    SearchResult,
)
from documents.retrieval.local import INDEX_BATCH
from documents.retrieval.local_search import CANDIDATES
from documents.retrieval.texts import (
    MAX_TEXT_CHARS,
    MAX_TEXTS_PER_CALL,
    AddedTexts,
    add_texts,
    delete_vectors,
    embed_texts,
    validate_texts,
)


def index_chunks(
    *,
    knowledge_base: KnowledgeBase,
    chunks: Iterable[Chunk],
    batch_size: int = INDEX_BATCH,
    progress: Progress | None = None,
) -> int:
    """Embed saved ``chunks`` of ``knowledge_base`` (through the cache, with its own encoder),
    store each vector in ``Chunk.vector`` and make them searchable (dense and keyword); returns
    how many.

    Works in batches of ``batch_size``, so ``chunks`` may be a lazy iterator of any length. Safe
    to run twice: a chunk indexed again replaces itself. After the knowledge base's encoder was
    changed, the first call re-embeds the whole knowledge base (from the chunk rows, the old
    index serving until the new one is complete), telling ``progress`` (chunks done, chunks in
    all) as it goes. Raises :class:`ModelChanged`
    when the knowledge base holds vectors of another model of the same encoder,
    :class:`EncoderNotConfigured` and :class:`EmbeddingProviderError`.
    """
    return get_backend().index_chunks(
        knowledge_base=knowledge_base, chunks=chunks, batch_size=batch_size, progress=progress
    )


def remove_chunks(*, knowledge_base: KnowledgeBase, chunk_ids: Sequence[int]) -> None:
    """Make these chunks unsearchable (their rows are the caller's business)."""
    get_backend().remove_chunks(knowledge_base=knowledge_base, chunk_ids=chunk_ids)


def remove_document(*, knowledge_base: KnowledgeBase, document_id: int) -> int:
    """Make every chunk of the document unsearchable; returns how many. Call it before the
    chunk rows are deleted (it reads their ids); chunks whose rows are already gone never show
    up in results either."""
    return get_backend().remove_document(knowledge_base=knowledge_base, document_id=document_id)


def knowledge_base_index_delete(*, kb_id: int) -> None:
    """Delete what the backend keeps for a knowledge base that is being deleted."""
    get_backend().delete_knowledge_base(kb_id=kb_id)


def rebuild_index(*, knowledge_base: KnowledgeBase, exclude: Sequence[int] = ()) -> Rebuilt:
    """Rebuild the knowledge base's index from its chunk rows, re-embedding (through the cache,
    with the knowledge base's encoder) the chunks without a vector or with another model's; the
    old index serves searches until the new one is complete, and the knowledge base records the
    new model only then."""
    return get_backend().rebuild(knowledge_base=knowledge_base, exclude=exclude)


def index_stale_reason(*, knowledge_base: KnowledgeBase) -> str | None:
    """Why the knowledge base's index must be rebuilt before it serves (missing while chunks
    have vectors, damaged, built by another tokenizer version), or None; cheap enough to check
    every knowledge base at start-up."""
    return get_backend().stale_reason(knowledge_base=knowledge_base)


def index_stats(*, knowledge_base: KnowledgeBase) -> IndexStats:
    """Counts and sizes of the knowledge base's index, and its model's cache counters."""
    return get_backend().stats(knowledge_base=knowledge_base)


def index_storage_bytes(*, kb_id: int) -> int:
    """Bytes the backend keeps on disk for the knowledge base (0 when none)."""
    return get_backend().storage_bytes(kb_id=kb_id)


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
    """The ``top_k`` chunks of ``knowledge_bases`` that best answer ``query``.

    ``mode``: ``dense`` (cosine similarity), ``keyword`` (BM25) or ``hybrid`` (both sides' top
    ``candidates`` fused by ``fusion``: ``convex``, a weighted sum of min-max normalised scores,
    or ``rrf``, weighted reciprocal rank fusion; see :mod:`embeddings.hybrid`). Weights default
    to the first knowledge base's ``dense_weight``/``keyword_weight``; in hybrid mode the dense
    weight is turned down when the encoder does not know the language of the query or of a
    knowledge base (see ``notes``). ``min_score`` applies to the mode's score: cosine, BM25, or
    the fused score in [0, 1]. ``document_ids``/``file_types`` restrict the chunks searched.
    Hits are ordered by score, ties by chunk id. ``query_vector`` replaces the query's embedding
    on the dense side (then ``query`` may be empty in dense mode). The caller has checked access
    to ``knowledge_bases``. Raises :class:`InvalidInput` for an unknown mode or fusion, a blank
    query, or a query vector whose dimension is not the index's.
    """
    return get_backend().search(
        knowledge_bases=knowledge_bases,
        query=query,
        mode=mode,
        top_k=top_k,
        min_score=min_score,
        dense_weight=dense_weight,
        keyword_weight=keyword_weight,
        document_ids=document_ids,
        file_types=file_types,
        candidates=candidates,
        query_vector=query_vector,
        fusion=fusion,
    )


__all__ = [
    "CANDIDATES",
    "ENCODERS",
    "INDEX_BATCH",
    "MAX_TEXTS_PER_CALL",
    "MAX_TEXT_CHARS",
    "MODES",
    "AddedTexts",
    "EmbeddingProviderError",
    "EmbeddingProviderUnavailable",
    "EncoderInfo",
    "EncoderNotConfigured",
    "IndexStats",
    "Mode",
    "ModelChanged",
    "Rebuilt",
    "SearchBackend",
    "SearchHit",
    "SearchResult",
    "add_texts",
    "check_encoder",
    "delete_vectors",
    "embed_texts",
    "encoder_choices",
    "encoder_for",
    "encoder_state",
    "get_backend",
    "get_encoder",
    "get_multilingual_encoder",
    "index_chunks",
    "index_stale_reason",
    "index_stats",
    "index_storage_bytes",
    "knowledge_base_index_delete",
    "query_encoder_for",
    "query_vector",
    "rebuild_index",
    "remove_chunks",
    "remove_document",
    "search",
    "sentence_encoders",
    "serving_choice",
    "text_sha256",
    "use_encoder",
    "validate_texts",
]
