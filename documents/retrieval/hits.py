"""What a search backend returns: plain frozen dataclasses (hits, results, index statistics),
and the one query that turns ranked chunk ids into hits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from documents.models import Chunk, DocumentStatus
from embeddings.hybrid import Hit

Mode = Literal["dense", "keyword", "hybrid"]
#: Told (chunks done, chunks in all) as a re-embedding goes (a switch of encoder).
Progress = Callable[[int, int], None]
MODES: tuple[Mode, ...] = ("dense", "keyword", "hybrid")


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    knowledge_base_id: int
    document_id: int
    document_title: str
    file_type: str
    text: str
    heading_path: str
    ordinal: int
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    score: float
    dense_score: float | None
    keyword_score: float | None
    fused_score: float | None
    metadata: dict[str, Any] = field(default_factory=dict)
    file_name: str = ""  # the uploaded file's name


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    mode: Mode
    dense_weight: float
    keyword_weight: float
    notes: list[str]


@dataclass(frozen=True)
class IndexStats:
    knowledge_base_id: int
    count: int
    database_count: int
    deleted: int
    segments: int
    model: str
    dimension: int
    index_type: str
    file_bytes: int
    version: int
    cache_hits: int
    cache_misses: int
    cache_entries: int


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild produced: how many chunks are searchable, by which model."""

    count: int
    model: str
    dimension: int
    version: int


# Exactly what SearchHit carries: the API's hit and the answer's citations use all of it.
_FIELDS = (
    "pk",
    "knowledge_base_id",
    "document_id",
    "document__title",
    "document__file_type",
    "text",
    "heading_path",
    "ordinal",
    "page_start",
    "page_end",
    "char_start",
    "char_end",
    "metadata__data",
    "document__original_name",
)


def hits_hydrate(*, ranked: Sequence[Hit], top_k: int, fused_scores: bool) -> list[SearchHit]:
    """The hits of ``ranked`` (chunk ids with their scores, best first), at most ``top_k``,
    from one query per window of ids (usually one query in all). Ids whose rows are gone, or
    whose document is not indexed and current, are skipped and the list is topped up from
    further down."""
    hits: list[SearchHit] = []
    position = 0
    while len(hits) < top_k and position < len(ranked):
        window = ranked[position : position + top_k - len(hits) + 10]
        position += len(window)
        rows = {
            row[0]: row
            # Only chunks of indexed, current documents: a document being ingested (or a new
            # version not yet swapped in) is invisible, so none is ever half-indexed.
            for row in Chunk.objects.filter(
                pk__in=[h.chunk_id for h in window],
                document__status=DocumentStatus.INDEXED,
                document__is_current=True,
            )
            .order_by()
            .values_list(*_FIELDS)
        }
        for h in window:
            row = rows.get(h.chunk_id)
            if row is None or len(hits) == top_k:
                continue
            hits.append(_search_hit(row, h, fused_scores))
    return hits


def _search_hit(row: tuple[Any, ...], hit: Hit, fused_scores: bool) -> SearchHit:
    (pk, kb_id, doc_id, title, file_type, text, heading, ordinal) = row[:8]
    (page_start, page_end, char_start, char_end, data, file_name) = row[8:]
    return SearchHit(
        chunk_id=pk,
        knowledge_base_id=kb_id,
        document_id=doc_id,
        document_title=title,
        file_type=file_type,
        text=text,
        heading_path=heading,
        ordinal=ordinal,
        page_start=page_start,
        page_end=page_end,
        char_start=char_start,
        char_end=char_end,
        score=hit.score,
        dense_score=hit.dense,
        keyword_score=hit.keyword,
        fused_score=hit.score if fused_scores else None,
        metadata=dict(data) if data is not None else {},
        file_name=file_name,
    )
