"""Knowledge bases, their documents, and the chunks that search returns.

Models hold fields, constraints and small derived properties only; the work is in services.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class SplitRule(models.TextChoices):
    PARAGRAPH = "paragraph", _("Paragraphs (headings kept as context)")
    SENTENCE = "sentence", _("Sentences")
    FIXED = "fixed", _("Fixed token windows")


class Aggregation(models.TextChoices):
    MEAN = "mean", _("Mean")
    WEIGHTED_LENGTH = "weighted_length", _("Weighted mean by length")
    WEIGHTED_POSITION = "weighted_position", _("Weighted mean by position decay")


class Encoder(models.TextChoices):
    """Which encoder embeds a knowledge base's chunks and queries."""

    MULTILINGUAL = "multilingual", _("multilingual-e5-small (bundled, multilingual)")
    LOCAL = "local", _("all-MiniLM-L6-v2 (bundled, faster, English only)")
    GIGACHAT = "gigachat", _("GigaChat Embeddings (1024-d)")
    YANDEX = "yandex", _("Yandex text-search-doc / text-search-query (256-d)")


class KnowledgeBase(models.Model):
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knowledge_bases"
    )
    encoder = models.CharField(
        _("encoder"), max_length=20, choices=Encoder.choices, default=Encoder.MULTILINGUAL
    )
    # Why the last switch of encoder failed (the knowledge base stayed on its old encoder).
    encoder_error = models.CharField(_("encoder switch error"), max_length=500, blank=True)
    embedding_model = models.CharField(_("embedding model"), max_length=200, blank=True)
    embedding_dimension = models.PositiveIntegerField(_("embedding dimension"), default=0)
    split_rule = models.CharField(
        _("splitting rule"), max_length=20, choices=SplitRule.choices, default=SplitRule.PARAGRAPH
    )
    max_chunk_tokens = models.PositiveIntegerField(_("maximum chunk size (tokens)"), default=200)
    overlap_tokens = models.PositiveIntegerField(_("overlap (tokens)"), default=30)
    heading_context = models.BooleanField(_("prefix chunks with their heading path"), default=True)
    aggregation = models.CharField(
        _("paragraph aggregation"),
        max_length=20,
        choices=Aggregation.choices,
        default=Aggregation.MEAN,
    )
    dense_weight = models.FloatField(_("dense weight"), default=1.0)
    keyword_weight = models.FloatField(_("keyword weight"), default=1.0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        constraints = (
            models.UniqueConstraint(fields=("owner", "name"), name="kb_unique_name_per_owner"),
            models.CheckConstraint(
                condition=models.Q(max_chunk_tokens__gte=16, max_chunk_tokens__lte=2048),
                name="kb_chunk_size_range",
                violation_error_message=_("The maximum chunk size must be 16 to 2048 tokens."),
            ),
            models.CheckConstraint(
                condition=models.Q(overlap_tokens__lte=models.F("max_chunk_tokens") / 2),
                name="kb_overlap_at_most_half",
                violation_error_message=_(
                    "The overlap can be at most half of the maximum chunk size."
                ),
            ),
        )

    def __str__(self) -> str:
        return self.name


class ShareRole(models.TextChoices):
    VIEWER = "viewer", _("Viewer (search and chat)")
    EDITOR = "editor", _("Editor (upload, delete, settings)")


class KnowledgeBaseShare(models.Model):
    """``user`` may use ``knowledge_base`` with ``role``. The owner is never a share."""

    knowledge_base = models.ForeignKey(
        KnowledgeBase, on_delete=models.CASCADE, related_name="shares"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knowledge_base_shares"
    )
    role = models.CharField(_("role"), max_length=10, choices=ShareRole.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("knowledge_base", "user_id")
        constraints = (
            models.UniqueConstraint(fields=("knowledge_base", "user"), name="kb_share_unique_user"),
            models.CheckConstraint(
                condition=models.Q(role__in=("viewer", "editor")), name="kb_share_role_valid"
            ),
        )

    def __str__(self) -> str:
        return f"{self.knowledge_base} → {self.user} ({self.role})"


class DocumentStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    EXTRACTING = "extracting", _("Extracting text")
    CHUNKING = "chunking", _("Chunking")
    EMBEDDING = "embedding", _("Embedding")
    INDEXED = "indexed", _("Indexed")
    FAILED = "failed", _("Failed")


class FileType(models.TextChoices):
    PDF = "pdf", "PDF"
    DOCX = "docx", "DOCX"
    TXT = "txt", _("Text")
    MARKDOWN = "md", "Markdown"
    HTML = "html", "HTML"


def _upload_path(instance: Document, filename: str) -> str:
    return f"kb/{instance.knowledge_base_id}/{instance.sha256[:2]}/{instance.sha256}/{filename}"


class Document(models.Model):
    knowledge_base = models.ForeignKey(
        KnowledgeBase, on_delete=models.CASCADE, related_name="documents"
    )
    title = models.CharField(_("title"), max_length=500)
    original_name = models.CharField(_("original file name"), max_length=255)
    file = models.FileField(_("file"), upload_to=_upload_path, max_length=500)
    file_type = models.CharField(_("type"), max_length=10, choices=FileType.choices)
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(
        _("status"), max_length=20, choices=DocumentStatus.choices, default=DocumentStatus.QUEUED
    )
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    failure_reason = models.TextField(_("failure reason"), blank=True)
    page_count = models.PositiveIntegerField(_("pages"), null=True, blank=True)
    chunk_count = models.PositiveIntegerField(_("chunks"), default=0)
    version = models.PositiveIntegerField(_("version"), default=1)
    replaces = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replaced_by"
    )
    is_current = models.BooleanField(_("current version"), default=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # The ingestion attempt that owns the document: raised by every claim (and by a retry) and
    # never reset, unlike ``attempts``. Every status write of an attempt is conditional on it,
    # so an attempt that was given up on (by the sweeper, or a retry) cannot write any more.
    ingest_run = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # float32 document vector: the knowledge base's ``aggregation`` of its chunks' vectors
    # (documents.retrieval.document_vectors), set when ingestion finishes.
    vector = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = (models.Index(fields=("knowledge_base", "status")),)

    def __str__(self) -> str:
        return self.title


class Chunk(models.Model):
    """A passage of a document. ``vector`` holds its float32 embedding (the source of truth for
    the per-knowledge-base FAISS file); the chunk's id is its FAISS id."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    knowledge_base = models.ForeignKey(
        KnowledgeBase, on_delete=models.CASCADE, related_name="chunks"
    )
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    heading_path = models.CharField(max_length=1000, blank=True)
    page_start = models.PositiveIntegerField(null=True, blank=True)
    page_end = models.PositiveIntegerField(null=True, blank=True)
    char_start = models.PositiveIntegerField(default=0)
    char_end = models.PositiveIntegerField(default=0)
    token_count = models.PositiveIntegerField(default=0)
    text_sha256 = models.CharField(max_length=64)
    vector = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ("document_id", "ordinal")
        constraints = (
            models.UniqueConstraint(fields=("document", "ordinal"), name="chunk_unique_ordinal"),
        )
        indexes = (models.Index(fields=("knowledge_base", "id")),)

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"


# --- retrieval: the embedding cache and the vector API's chunk metadata ---------------------
# Moved from the embeddings app with state-only migrations: they keep their tables.


class CachedEmbedding(models.Model):
    """A vector stored once per (model, sha256 of the exact text)."""

    model = models.CharField(max_length=200)
    text_sha256 = models.CharField(max_length=64)
    dimension = models.PositiveIntegerField()
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "embeddings_cachedembedding"
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

    class Meta:
        db_table = "embeddings_cachecounter"

    def __str__(self) -> str:
        return f"{self.model}: {self.hits} hits, {self.misses} misses"


class ChunkMetadata(models.Model):
    """Free-form metadata given with texts added through the vector API."""

    chunk = models.OneToOneField(
        Chunk, on_delete=models.CASCADE, primary_key=True, related_name="metadata"
    )
    data = models.JSONField(default=dict)

    class Meta:
        db_table = "embeddings_chunkmetadata"

    def __str__(self) -> str:
        return f"metadata of chunk {self.chunk_id}"
