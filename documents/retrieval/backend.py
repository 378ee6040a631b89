"""The seam between the product and a search engine: :class:`SearchBackend`, its one
implementations (:class:`LocalBackend`: FAISS + BM25 files per knowledge base, on the
``embeddings`` engine; :class:`PostgresBackend`: pgvector and full-text search in PostgreSQL),
and :func:`get_backend`, the one place that picks one from the setting ``SEARCH_BACKEND``.

A backend owns where vectors and postings are kept and how a query is ranked; the chunk rows
(``Chunk.vector``, embedded through the cache by :mod:`documents.retrieval.encoders`) stay the
source of truth it can be rebuilt from. A new backend is a class with these methods and a row
of :data:`BACKENDS`; callers use :mod:`documents.retrieval` and never name a backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from documents.models import Chunk, KnowledgeBase
from documents.retrieval import local, local_search
from documents.retrieval.hits import IndexStats, Mode, Progress, Rebuilt, SearchResult
from documents.retrieval.postgres import PostgresBackend


class SearchBackend(Protocol):
    """Where a knowledge base's chunks are made searchable, and searched.

    Every method takes model rows or ids and returns plain data. ``index_chunks`` embeds saved
    chunks with the knowledge base's encoder, stores each vector in ``Chunk.vector`` and makes
    them searchable (safe to run twice); ``remove_*`` make chunks unsearchable (the rows are the
    caller's); ``rebuild`` rebuilds a knowledge base from its chunk rows; ``search`` has the
    contract of :func:`documents.retrieval.search` (the caller has checked access)."""

    def index_chunks(
        self,
        *,
        knowledge_base: KnowledgeBase,
        chunks: Iterable[Chunk],
        batch_size: int,
        progress: Progress | None = None,
    ) -> int: ...

    def remove_chunks(self, *, knowledge_base: KnowledgeBase, chunk_ids: Sequence[int]) -> None: ...

    def remove_document(self, *, knowledge_base: KnowledgeBase, document_id: int) -> int: ...

    def delete_knowledge_base(self, *, kb_id: int) -> None: ...

    def rebuild(self, *, knowledge_base: KnowledgeBase, exclude: Sequence[int] = ()) -> Rebuilt: ...

    def stale_reason(self, *, knowledge_base: KnowledgeBase) -> str | None: ...

    def search(
        self,
        *,
        knowledge_bases: Sequence[KnowledgeBase],
        query: str,
        mode: Mode,
        top_k: int,
        min_score: float | None,
        dense_weight: float | None,
        keyword_weight: float | None,
        document_ids: Sequence[int] | None,
        file_types: Sequence[str] | None,
        candidates: int,
        query_vector: Sequence[float] | None,
        fusion: str,
    ) -> SearchResult: ...

    def stats(self, *, knowledge_base: KnowledgeBase) -> IndexStats: ...

    def storage_bytes(self, *, kb_id: int) -> int: ...


class LocalBackend:
    """FAISS segments and BM25 postings in a folder per knowledge base under ``INDEX_DIR``
    (:mod:`documents.retrieval.local`, :mod:`documents.retrieval.local_search`)."""

    name = "local"

    def index_chunks(
        self,
        *,
        knowledge_base: KnowledgeBase,
        chunks: Iterable[Chunk],
        batch_size: int,
        progress: Progress | None = None,
    ) -> int:
        return local.index_chunks(
            knowledge_base=knowledge_base, chunks=chunks, batch_size=batch_size, progress=progress
        )

    def remove_chunks(self, *, knowledge_base: KnowledgeBase, chunk_ids: Sequence[int]) -> None:
        local.remove_chunks(knowledge_base=knowledge_base, chunk_ids=chunk_ids)

    def remove_document(self, *, knowledge_base: KnowledgeBase, document_id: int) -> int:
        return local.remove_document(knowledge_base=knowledge_base, document_id=document_id)

    def delete_knowledge_base(self, *, kb_id: int) -> None:
        local.knowledge_base_index_delete(kb_id=kb_id)

    def rebuild(self, *, knowledge_base: KnowledgeBase, exclude: Sequence[int] = ()) -> Rebuilt:
        snap = local.rebuild_index(knowledge_base=knowledge_base, exclude=exclude)
        return Rebuilt(snap.count, snap.manifest.model, snap.manifest.dimension, snap.version)

    def stale_reason(self, *, knowledge_base: KnowledgeBase) -> str | None:
        return local.index_stale_reason(knowledge_base=knowledge_base)

    def search(
        self,
        *,
        knowledge_bases: Sequence[KnowledgeBase],
        query: str,
        mode: Mode,
        top_k: int,
        min_score: float | None,
        dense_weight: float | None,
        keyword_weight: float | None,
        document_ids: Sequence[int] | None,
        file_types: Sequence[str] | None,
        candidates: int,
        query_vector: Sequence[float] | None,
        fusion: str,
    ) -> SearchResult:
        return local_search.search(
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

    def stats(self, *, knowledge_base: KnowledgeBase) -> IndexStats:
        return local.index_stats(knowledge_base=knowledge_base)

    def storage_bytes(self, *, kb_id: int) -> int:
        folder = local.index_folder(kb_id)
        if not folder.is_dir():
            return 0
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


#: Every backend by its ``SEARCH_BACKEND`` name.
BACKENDS: dict[str, type[SearchBackend]] = {"local": LocalBackend, "postgres": PostgresBackend}


@cache
def _backend(name: str) -> SearchBackend:
    try:
        return BACKENDS[name]()
    except KeyError:
        known = ", ".join(BACKENDS)
        raise ImproperlyConfigured(
            f"SEARCH_BACKEND={name!r} is not a search backend: use one of {known}."
        ) from None


def get_backend() -> SearchBackend:
    """The backend named by ``SEARCH_BACKEND`` (one instance per process and name)."""
    return _backend(settings.SEARCH_BACKEND)


def backend_named(name: str) -> SearchBackend:
    """The backend called ``name`` whatever ``SEARCH_BACKEND`` says (``rebuild_index
    --backend``: fill a backend before switching to it)."""
    return _backend(name)


__all__ = [
    "BACKENDS",
    "LocalBackend",
    "PostgresBackend",
    "SearchBackend",
    "backend_named",
    "get_backend",
]
