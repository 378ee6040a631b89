"""Wire schemas of the documents API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Field, Schema

from core.schemas import BodyIn
from documents.reasons import translate_reason

ENCODER_PATTERN = "^(multilingual|local|gigachat|yandex)$"
ENCODER_HELP = (
    "Which encoder embeds chunks and questions: multilingual (the bundled multilingual-e5-small, "
    "every language, the default), local (the offline sentence-transformers model, "
    "all-MiniLM-L6-v2: faster, English only), gigachat (GigaChat Embeddings, 1024-d) or "
    "yandex (text-search-doc / text-search-query, 256-d). A provider must be configured; "
    "changing it re-embeds every chunk (the old index serves searches until then)."
)


class KnowledgeBaseIn(BodyIn):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    split_rule: str = Field("paragraph", pattern="^(paragraph|sentence|fixed)$")
    max_chunk_tokens: int = Field(200, ge=16, le=2048)
    overlap_tokens: int = Field(30, ge=0, le=1024)
    heading_context: bool = True
    aggregation: str = Field("mean", pattern="^(mean|weighted_length|weighted_position)$")
    encoder: str = Field("multilingual", pattern=ENCODER_PATTERN, description=ENCODER_HELP)
    # None: the deployment's HYBRID_DENSE_WEIGHT / HYBRID_KEYWORD_WEIGHT.
    dense_weight: float | None = Field(None, ge=0, le=10)
    keyword_weight: float | None = Field(None, ge=0, le=10)


class KnowledgeBasePatch(BodyIn):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None
    split_rule: str | None = Field(None, pattern="^(paragraph|sentence|fixed)$")
    max_chunk_tokens: int | None = Field(None, ge=16, le=2048)
    overlap_tokens: int | None = Field(None, ge=0, le=1024)
    heading_context: bool | None = None
    aggregation: str | None = Field(None, pattern="^(mean|weighted_length|weighted_position)$")
    dense_weight: float | None = Field(None, ge=0, le=10)
    keyword_weight: float | None = Field(None, ge=0, le=10)
    encoder: str | None = Field(None, pattern=ENCODER_PATTERN, description=ENCODER_HELP)


class KnowledgeBaseOut(Schema):
    id: int
    name: str
    description: str
    owner_id: int
    encoder: str
    embedding_model: str
    embedding_dimension: int
    split_rule: str
    max_chunk_tokens: int
    overlap_tokens: int
    heading_context: bool
    aggregation: str
    dense_weight: float
    keyword_weight: float
    document_count: int = 0
    owner: str = ""
    role: str = Field("owner", description="Your role: owner, editor or viewer.")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_owner(obj: Any) -> str:
        return str(obj.owner.get_username())

    @staticmethod
    def resolve_role(obj: Any) -> str:
        return str(getattr(obj, "user_role", None) or "owner")


class ShareIn(BodyIn):
    user: str = Field(min_length=1, max_length=254, description="A user name or e-mail.")
    role: str = Field(pattern="^(viewer|editor)$")


class SharePatch(BodyIn):
    role: str = Field(pattern="^(viewer|editor)$")


class ShareInviteOut(Schema):
    detail: str = Field(description="The same answer whether or not the user exists.")


class ShareOut(Schema):
    id: int
    user_id: int
    username: str
    role: str
    created_at: datetime

    @staticmethod
    def resolve_username(obj: Any) -> str:
        return str(obj.user.get_username())


class KnowledgeBaseUpdateOut(Schema):
    knowledge_base: KnowledgeBaseOut
    reindexing: bool


class DocumentOut(Schema):
    id: int
    knowledge_base_id: int
    title: str
    original_name: str
    file_type: str
    size: int
    sha256: str
    status: str
    progress: int
    failure_reason: str
    page_count: int | None
    chunk_count: int
    version: int
    is_current: bool
    replaces_id: int | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_failure_reason(obj: Any) -> str:
        """Stored in English; answered in the caller's language (``documents.reasons``)."""
        reason = obj.get("failure_reason") if isinstance(obj, dict) else obj.failure_reason
        return translate_reason(reason or "")


class ChunkOut(Schema):
    id: int
    ordinal: int
    text: str
    heading_path: str
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    token_count: int


class DocumentDetailOut(DocumentOut):
    chunks: list[ChunkOut]
    chunks_total: int


class UploadItemOut(Schema):
    name: str
    duplicate: bool
    document: DocumentOut


class UploadOut(Schema):
    documents: list[UploadItemOut]
