"""Ingestion: a stored file becomes searchable chunks. The Celery task and the web process's
thread pool both call :func:`document_ingest`; it holds the work, the task stays thin.

The document's pages stream through extraction, chunking and embedding in bounded batches, so
memory does not grow with the page count. Chunks written along the way are invisible to search
until the document is marked ``indexed`` (search only returns chunks of indexed, current
documents), so a document is never half-indexed: a killed worker leaves rows that the next
attempt (or the sweeper) clears.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from documents.chunking import ChunkDraft, ChunkingOptions, iter_chunks
from documents.models import Chunk, Document, DocumentStatus, KnowledgeBase
from documents.progress import ProgressManager
from documents.readers import Page
from raggen.errors import ApplicationError

logger = logging.getLogger(__name__)

IN_PROGRESS = (DocumentStatus.EXTRACTING, DocumentStatus.CHUNKING, DocumentStatus.EMBEDDING)
#: Chunks written and embedded per step.
BATCH = 64


class TransientIngestError(Exception):
    """Worth retrying later (the database was busy, a file system hiccup)."""


def _stale_before() -> timedelta:
    return timedelta(seconds=settings.INGEST_STALE_SECONDS)


def _claim(document_id: int) -> Document | None:
    """Take the document for this attempt, or ``None`` when there is nothing to do: it is gone,
    indexed, failed, or another worker is on it (its heartbeat is fresh)."""
    now = timezone.now()
    with transaction.atomic():
        document = (
            Document.objects.select_for_update()
            .select_related("knowledge_base")
            .filter(pk=document_id)
            .first()
        )
        if document is None:
            return None
        if document.status in (DocumentStatus.INDEXED, DocumentStatus.FAILED):
            return None
        heartbeat = document.heartbeat_at
        if document.status in IN_PROGRESS and heartbeat and now - heartbeat < _stale_before():
            return None
        document.status = DocumentStatus.EXTRACTING
        document.progress = 0
        document.failure_reason = ""
        document.attempts += 1
        document.heartbeat_at = now
        document.save(
            update_fields=["status", "progress", "failure_reason", "attempts", "heartbeat_at"]
        )
    return document


def _discard_chunks(document: Document) -> None:
    """Remove what an earlier, interrupted attempt left behind."""
    from embeddings.services import remove_document

    if Chunk.objects.filter(document=document).exists():
        remove_document(document.knowledge_base, document.pk)
        Chunk.objects.filter(document=document).delete()


class _Progress:
    """Writes status, percent and heartbeat, and tells the browser; at most once a second
    unless the stage changes."""

    def __init__(self, document: Document, page_count: int | None) -> None:
        self.document = document
        self.page_count = page_count
        self.manager = ProgressManager(document.knowledge_base_id)
        self._last = 0.0
        self._status = ""

    def __call__(self, status: str, percent: int, pages_done: int | None = None) -> None:
        import time

        now = time.monotonic()
        if status == self._status and now - self._last < 1.0:
            return
        self._last, self._status = now, status
        Document.objects.filter(pk=self.document.pk).update(
            status=status, progress=percent, heartbeat_at=timezone.now()
        )
        self.manager.send(self.document.pk, status, percent, pages_done=pages_done)


def _chunking_options(kb: KnowledgeBase) -> ChunkingOptions:
    return ChunkingOptions(
        split_rule=kb.split_rule,
        max_tokens=kb.max_chunk_tokens,
        overlap_tokens=kb.overlap_tokens,
        heading_context=kb.heading_context,
    )


def _run(document: Document) -> tuple[int, int | None]:
    """Extract, chunk, embed and index; returns (chunk count, page count)."""
    from documents.readers import count_pages, iter_document
    from embeddings.services import index_chunks

    kb = document.knowledge_base
    path = Path(document.file.path)
    page_count = count_pages(path, document.file_type)
    progress = _Progress(document, page_count)
    progress(DocumentStatus.EXTRACTING, 1)
    pages_seen = [0]

    def pages() -> Iterator[Page]:
        for page in iter_document(path, document.file_type, max_pages=settings.INGEST_MAX_PAGES):
            pages_seen[0] += 1
            yield page

    ordinal = 0
    batch: list[Chunk] = []

    def flush() -> None:
        Chunk.objects.bulk_create(batch)
        index_chunks(kb, batch)
        batch.clear()
        done = pages_seen[0]
        percent = 5 + int(90 * done / page_count) if page_count else min(90, 5 + ordinal)
        progress(DocumentStatus.EMBEDDING, min(percent, 95), done)

    for draft in iter_chunks(pages(), _chunking_options(kb)):
        if ordinal == 0:
            progress(DocumentStatus.CHUNKING, 3, pages_seen[0])
        batch.append(_chunk_row(document, draft, ordinal))
        ordinal += 1
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return ordinal, page_count or (pages_seen[0] if document.file_type == "pdf" else None)


def _chunk_row(document: Document, draft: ChunkDraft, ordinal: int) -> Chunk:
    from embeddings.cache import text_sha256

    return Chunk(
        document=document,
        knowledge_base_id=document.knowledge_base_id,
        ordinal=ordinal,
        text=draft.text,
        heading_path=draft.heading_label[:1000],
        page_start=draft.page_start,
        page_end=draft.page_end,
        char_start=draft.char_start,
        char_end=draft.char_end,
        token_count=draft.token_count,
        text_sha256=text_sha256(draft.text),
    )


def _finish(document: Document, chunk_count: int, page_count: int | None) -> None:
    """Make the document searchable; a new version swaps with the old one atomically."""
    from documents.services import document_delete
    from embeddings.document_vectors import document_vector_compute

    document_vector_compute(document=document)  # streams the chunk vectors, stores the aggregate
    old: Document | None = None
    with transaction.atomic():
        if document.replaces_id is not None:
            old = Document.objects.select_for_update().filter(pk=document.replaces_id).first()
            if old is not None:
                Document.objects.filter(pk=old.pk).update(is_current=False)
        Document.objects.filter(pk=document.pk).update(
            status=DocumentStatus.INDEXED,
            progress=100,
            chunk_count=chunk_count,
            page_count=page_count,
            is_current=True,
            replaces=None,
            heartbeat_at=timezone.now(),
        )
    if old is not None:
        document_delete(old)
    ProgressManager(document.knowledge_base_id).send(
        document.pk, DocumentStatus.INDEXED, 100, pages_done=page_count
    )


def mark_failed(document: Document, reason: str) -> None:
    """Record a permanent failure with its reason and clear partial chunks."""
    try:
        _discard_chunks(document)
    except Exception:
        logger.exception("could not clear the chunks of failed document %s", document.pk)
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.FAILED, failure_reason=reason, heartbeat_at=timezone.now()
    )
    ProgressManager(document.knowledge_base_id).send(
        document.pk, DocumentStatus.FAILED, 100, failure_reason=reason
    )


def document_ingest(document_id: int) -> str:
    """Ingest one document; returns its final status (or ``skipped``).

    Idempotent: a document already indexed, failed, or being ingested elsewhere is skipped, and
    a retried document starts from a clean slate, so chunks are never duplicated. A file that
    cannot be read ends ``failed`` with the reader's reason; an unexpected error ends ``failed``
    with a plain message (and is logged). Raises :class:`TransientIngestError` only for errors
    worth retrying, so that the task retries with backoff.
    """
    from documents.readers import UnreadableDocument

    document = _claim(document_id)
    if document is None:
        return "skipped"
    try:
        _discard_chunks(document)
        chunk_count, page_count = _run(document)
        if chunk_count == 0:
            mark_failed(
                document,
                gettext_noop("No text was found in this file, so there is nothing to search."),
            )
            return DocumentStatus.FAILED
        _finish(document, chunk_count, page_count)
        return DocumentStatus.INDEXED
    except UnreadableDocument as exc:
        mark_failed(document, exc.reason)
    except ApplicationError as exc:
        # A provider's embeddings that are rate limited or down: retried like a busy database.
        if getattr(exc, "retryable", False):
            if document.attempts < settings.INGEST_MAX_ATTEMPTS:
                Document.objects.filter(pk=document.pk).update(
                    status=DocumentStatus.QUEUED, heartbeat_at=None, updated_at=timezone.now()
                )
                raise TransientIngestError(exc.message) from exc
            mark_failed(
                document,
                gettext_noop("%(message)s (tried %(count)s times; retry later)")
                % {"message": exc.message, "count": document.attempts},
            )
        else:
            mark_failed(document, exc.message)
    except (OperationalError, OSError) as exc:
        if document.attempts < settings.INGEST_MAX_ATTEMPTS:
            Document.objects.filter(pk=document.pk).update(
                status=DocumentStatus.QUEUED, heartbeat_at=None, updated_at=timezone.now()
            )
            raise TransientIngestError(str(exc)) from exc
        mark_failed(
            document,
            gettext_noop("Indexing failed %(count)s times (%(error)s). Try again later.")
            % {"count": document.attempts, "error": exc},
        )
    except MemoryError:
        mark_failed(
            document,
            gettext_noop("This file needs more memory than the server has; split it up."),
        )
    except Exception:
        logger.exception("ingestion of document %s failed", document.pk)
        mark_failed(
            document,
            gettext_noop(
                "An unexpected error stopped indexing. Retry it; if it fails again, tell the admin."
            ),
        )
    return DocumentStatus.FAILED


def sweep_stale(now: datetime | None = None) -> list[int]:
    """Find documents whose worker died (in progress, heartbeat older than
    ``INGEST_STALE_SECONDS``; or queued and untouched that long, e.g. when the web process that
    held them in its thread pool stopped) and queue them again,
    or mark them failed after ``INGEST_MAX_ATTEMPTS``. Returns the ids queued again."""
    from documents.tasks import document_ingest_task
    from raggen.background import enqueue

    now = now or timezone.now()
    cutoff = now - _stale_before()
    stale = Document.objects.filter(
        Q(status__in=IN_PROGRESS, heartbeat_at__lt=cutoff)
        | Q(status=DocumentStatus.QUEUED, updated_at__lt=cutoff)
    )
    requeued: list[int] = []
    for document in stale.select_related("knowledge_base"):
        if document.attempts >= settings.INGEST_MAX_ATTEMPTS:
            mark_failed(
                document,
                gettext_noop(
                    "Indexing was interrupted repeatedly (the worker stopped). Retry it; if it "
                    "stops again, the file may be too large for this server."
                ),
            )
            continue
        logger.warning("document %s was left in %s: queued again", document.pk, document.status)
        enqueue(document_ingest_task, document.pk)
        requeued.append(document.pk)
    return requeued
