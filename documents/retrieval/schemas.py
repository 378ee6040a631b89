"""Wire shapes of the vector API."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Field, Schema

from core.schemas import BodyIn


class EmbedIn(BodyIn):
    texts: list[str] = Field(
        ..., min_length=1, description="Texts to embed (at most 256, each ≤ 20,000 chars)."
    )


class EmbedOut(Schema):
    model: str
    dimension: int
    vectors: list[list[float]]


class SearchIn(BodyIn):
    knowledge_base_ids: list[int] = Field(..., min_length=1, max_length=20)
    query: str = ""
    mode: Literal["dense", "keyword", "hybrid"] = "hybrid"
    fusion: Literal["convex", "rrf"] = "convex"
    top_k: int = Field(10, ge=1, le=100)
    min_score: float | None = None
    dense_weight: float | None = Field(None, ge=0)
    keyword_weight: float | None = Field(None, ge=0)
    document_ids: list[int] | None = None
    file_types: list[str] | None = None
    vector: list[float] | None = Field(None, description="Search by this vector (dense side).")


class ScoresOut(Schema):
    dense: float | None
    keyword: float | None
    fused: float | None


class HitOut(Schema):
    chunk_id: int
    knowledge_base_id: int
    document_id: int
    document_title: str
    file_type: str
    text: str
    heading_path: str
    position: int
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    score: float
    scores: ScoresOut
    metadata: dict[str, Any]


class SearchOut(Schema):
    mode: str
    dense_weight: float
    keyword_weight: float
    notes: list[str]
    hits: list[HitOut]


class TextsAddIn(BodyIn):
    texts: list[str] = Field(..., min_length=1)
    metadata: list[dict[str, Any]] | None = None
    title: str = Field("", max_length=500)


class TextsAddOut(Schema):
    document_id: int
    chunk_ids: list[int]


class VectorsDeleteIn(BodyIn):
    chunk_ids: list[int] = Field(..., min_length=1, max_length=10_000)


class VectorsDeleteOut(Schema):
    deleted: int


class IndexStatsOut(Schema):
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


class DocumentVectorOut(Schema):
    document_id: int
    model: str
    dimension: int
    aggregation: str = Field(..., description="mean, weighted_length or weighted_position")
    vector: list[float]


class SimilarDocumentOut(Schema):
    document_id: int
    title: str
    file_type: str
    score: float = Field(..., description="Cosine similarity of the document vectors.")


class SimilarDocumentsOut(Schema):
    document_id: int
    results: list[SimilarDocumentOut]
