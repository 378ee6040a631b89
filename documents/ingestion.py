"""Ingestion: a stored file becomes searchable chunks. The Celery task and the web process's
thread pool both call :func:`document_ingest`; it holds the work, the task stays thin.

Reading the file (the readers and the chunker) runs in a child process held within
``INGEST_PARSE_TIMEOUT`` and ``INGEST_PARSE_MEMORY_MB`` (:mod:`documents.extraction`); a file
past a limit ends ``failed`` with a reason that says which, and the process that serves
everyone else never parses a byte of it. The child streams chunk drafts back in batches, which
are written and embedded here as they come, so memory does not grow with the page count.
Chunks written along the way are invisible to search until the document is marked ``indexed``
(search only returns chunks of indexed, current documents), so a document is never
half-indexed: a killed worker leaves rows that the next attempt (or the sweeper) clears.

Each claim of a document starts a new attempt whose every write is conditional on the document
still being its own, with a heartbeat kept fresh from a side thread (:mod:`documents.attempt`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from core.errors import ApplicationError
from documents.attempt import (
    IN_PROGRESS,
    Attempt,
    Heartbeat,
    Progress,
    Superseded,
    claim,
    stale_before,
)
from documents.chunking import ChunkDraft, ChunkingOptions
from documents.extraction import (
    Extraction,
    ExtractionCancelled,
    ParseCrashed,
    ParseKilled,
    ParseMemoryExceeded,
    ParseTimeout,
)
from documents.models import Chunk, Document, DocumentStatus, KnowledgeBase
from documents.progress import ProgressManager
from documents.removal import document_delete
from documents.retrieval import index_chunks, remove_chunks, remove_document, text_sha256
from documents.retrieval.document_vectors import document_vector_compute
from documents.stored_files import stored_file_local_copy

logger = logging.getLogger(__name__)

PARSE_TIMEOUT_MINUTES = gettext_noop(
    "This file took longer than %(count)s minutes to read; it may be damaged or built to "
    "overload readers, so it was not indexed."
)
PARSE_TIMEOUT_SECONDS = gettext_noop(
    "This file took longer than %(count)s seconds to read; it may be damaged or built to "
    "overload readers, so it was not indexed."
)
PARSE_MEMORY = gettext_noop(
    "This file needed more than %(limit)s MB of memory to read; it may be damaged or built to "
    "overload readers, so it was not indexed. If it is a genuine document, split it into "
    "smaller files."
)
PARSE_KILLED = gettext_noop(
    "Reading this file was stopped: the reading process was killed (perhaps by the system, "
    "for lack of memory). Retry it; if it fails again, the file may be damaged or built to "
    "overload readers."
)
UNEXPECTED = gettext_noop(
    "An unexpected error stopped indexing. Retry it; if it fails again, tell the admin."
)


class TransientIngestError(Exception):
    """Worth retrying later (the database was busy, a file system hiccup)."""


def timeout_reason(seconds: int) -> str:
    """The failure reason of a file that took longer than ``seconds`` to read (stored in
    English, translated when shown: ``documents.reasons``)."""
    if seconds >= 120 and seconds % 60 == 0:
        return PARSE_TIMEOUT_MINUTES % {"count": seconds // 60}
    return PARSE_TIMEOUT_SECONDS % {"count": seconds}


def _discard_chunks(document: Document) -> None:
    """Remove what an earlier, interrupted attempt left behind."""
    if Chunk.objects.filter(document=document).exists():
        remove_document(knowledge_base=document.knowledge_base, document_id=document.pk)
        Chunk.objects.filter(document=document).delete()


def _chunking_options(kb: KnowledgeBase) -> ChunkingOptions:
    return ChunkingOptions(
        split_rule=kb.split_rule,
        max_tokens=kb.max_chunk_tokens,
        overlap_tokens=kb.overlap_tokens,
        heading_context=kb.heading_context,
    )


def _run(attempt: Attempt) -> tuple[int, int | None]:
    """Read (in the child), chunk, embed and index; returns (chunk count, page count)."""
    document = attempt.document
    kb = document.knowledge_base
    progress = Progress(attempt)
    progress(DocumentStatus.EXTRACTING, 1)
    ordinal = pages_done = 0
    # From an object store, a temporary copy within the upload limit and the reading time.
    with (
        stored_file_local_copy(
            name=document.file.name,
            sha256=document.sha256,
            max_bytes=max(document.size, settings.UPLOAD_MAX_BYTES),
            timeout=settings.INGEST_PARSE_TIMEOUT,
        ) as path,
        Extraction(
            path,
            document.file_type,
            options=_chunking_options(kb),
            max_pages=settings.INGEST_MAX_PAGES,
            timeout=settings.INGEST_PARSE_TIMEOUT,
            memory_mb=settings.INGEST_PARSE_MEMORY_MB,
            cancelled=attempt.lost.is_set,
        ) as reading,
    ):
        page_count = reading.page_count
        for batch in reading.batches():
            if ordinal == 0:
                progress(DocumentStatus.CHUNKING, 3, batch.pages_done)
            rows = [
                _chunk_row(document, draft, ordinal + i) for i, draft in enumerate(batch.drafts)
            ]
            ordinal += len(rows)
            pages_done = batch.pages_done
            _store(attempt, rows, progress)
            percent = 5 + int(90 * pages_done / page_count) if page_count else 5 + ordinal
            progress(DocumentStatus.EMBEDDING, min(percent, 95), pages_done)
    return ordinal, page_count or (pages_done if document.file_type == "pdf" else None)


def _store(attempt: Attempt, rows: list[Chunk], progress: Progress) -> None:
    """Write a batch of chunk rows, in one transaction with the check that the document is
    still the attempt's (so a superseded attempt adds no row after the new one cleared them),
    then embed and index them."""
    with transaction.atomic():
        attempt.require(heartbeat_at=timezone.now())
        Chunk.objects.bulk_create(rows)
    kb_id = attempt.document.knowledge_base_id

    def reembedded(done: int, total: int) -> None:
        progress(DocumentStatus.EMBEDDING, 5 + int(90 * done / max(total, 1)))
        ProgressManager(kb_id).reembed(done, total)

    index_chunks(
        knowledge_base=attempt.document.knowledge_base,
        chunks=rows,
        # A switch of encoder re-embeds the whole knowledge base within this call: its progress
        # is this document's (and keeps its heartbeat fresh) and the knowledge base's own (the
        # page's "re-embedding N%").
        progress=reembedded,
    )


def _chunk_row(document: Document, draft: ChunkDraft, ordinal: int) -> Chunk:
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


def _finish(attempt: Attempt, chunk_count: int, page_count: int | None) -> None:
    """Make the document searchable; a new version swaps with the old one atomically."""
    document = attempt.document
    attempt.require(heartbeat_at=timezone.now())
    # Streams the chunk vectors; the aggregate is stored below, with the status.
    vector = document_vector_compute(document=document, store=False)
    old: Document | None = None
    with transaction.atomic():
        attempt.require(
            status=DocumentStatus.INDEXED,
            progress=100,
            chunk_count=chunk_count,
            page_count=page_count,
            is_current=True,
            replaces=None,
            vector=None if vector is None else vector.tobytes(),
            heartbeat_at=timezone.now(),
        )
        if document.replaces_id is not None:
            old = Document.objects.select_for_update().filter(pk=document.replaces_id).first()
            if old is not None:
                Document.objects.filter(pk=old.pk).update(is_current=False)
    if old is not None:
        document_delete(document=old)
    ProgressManager(document.knowledge_base_id).send(
        document.pk, DocumentStatus.INDEXED, 100, pages_done=page_count
    )


def mark_failed(
    document: Document, reason: str, *, run: int | None = None, only_if: Q | None = None
) -> bool:
    """Record a permanent failure with its reason and clear the chunks written so far.

    Conditional on the document still belonging to attempt ``run`` (default: the one
    ``document`` was loaded with) and, when given, on ``only_if``; returns whether it was
    marked. A document another attempt owns by now is left to that attempt.
    """
    condition = Q(pk=document.pk, ingest_run=document.ingest_run if run is None else run)
    with transaction.atomic():
        updated = Document.objects.filter(condition & (only_if or Q())).update(
            status=DocumentStatus.FAILED, failure_reason=reason, heartbeat_at=timezone.now()
        )
        if not updated:
            return False
        chunks = Chunk.objects.filter(document_id=document.pk)
        chunk_ids = list(chunks.values_list("id", flat=True))
        chunks.delete()
    if chunk_ids:
        try:
            remove_chunks(knowledge_base=document.knowledge_base, chunk_ids=chunk_ids)
        except Exception:
            logger.exception("could not clear the index entries of failed document %s", document.pk)
    ProgressManager(document.knowledge_base_id).send(
        document.pk, DocumentStatus.FAILED, 100, failure_reason=reason
    )
    return True


def _queue_again(attempt: Attempt, *, counted: bool) -> bool:
    """Put the document back in the queue (a transient error, or this process stopping);
    an attempt that is not ``counted`` does not use up one of ``INGEST_MAX_ATTEMPTS``, and the
    document is due at the next sweep. Returns whether the document was still the attempt's."""
    fields: dict[str, Any] = {"status": DocumentStatus.QUEUED, "heartbeat_at": None}
    if counted:
        fields["updated_at"] = timezone.now()
    else:
        fields["attempts"] = F("attempts") - 1
        fields["updated_at"] = timezone.now() - stale_before()
    return attempt.write(**fields)


def document_ingest(document_id: int) -> str:
    """Ingest one document; returns its final status, ``skipped`` when there was nothing to
    do, ``superseded`` when another attempt took the document over meanwhile, or
    ``interrupted`` when this process is stopping (the document is queued again).

    Idempotent: a document already indexed, failed, or being ingested elsewhere is skipped, and
    a retried document starts from a clean slate, so chunks are never duplicated. A file that
    cannot be read ends ``failed`` with the reader's reason, one that hits a reading limit with
    a reason naming the limit, an unexpected error with a plain message (and is logged).
    Raises :class:`TransientIngestError` only for errors worth retrying, so that the task
    retries with backoff.
    """
    document = claim(document_id)
    if document is None:
        return "skipped"
    attempt = Attempt(document)
    with Heartbeat(attempt):
        try:
            return _attempt(attempt)
        except Superseded:
            logger.warning(
                "document %s: attempt %s was superseded; its work is dropped",
                document.pk,
                attempt.run,
            )
            return "superseded"


def _attempt(attempt: Attempt) -> str:
    from documents.readers import UnreadableDocument

    document = attempt.document
    try:
        _discard_chunks(document)
        chunk_count, page_count = _run(attempt)
        if chunk_count == 0:
            _fail(
                attempt,
                gettext_noop("No text was found in this file, so there is nothing to search."),
            )
            return DocumentStatus.FAILED
        _finish(attempt, chunk_count, page_count)
        return DocumentStatus.INDEXED
    except Superseded:
        raise
    except ExtractionCancelled:
        if attempt.lost.is_set():
            raise Superseded from None
        logger.warning(
            "document %s: reading stopped as the process stops; queued again", document.pk
        )
        if not _queue_again(attempt, counted=False):
            raise Superseded from None
        return "interrupted"
    except ParseTimeout as exc:
        logger.warning("document %s: reading stopped at the time limit (%s)", document.pk, exc)
        _fail(attempt, timeout_reason(int(exc.seconds)))
    except ParseMemoryExceeded as exc:
        logger.warning("document %s: reading stopped at the memory limit (%s)", document.pk, exc)
        _fail(attempt, PARSE_MEMORY % {"limit": exc.limit_mb})
    except ParseKilled as exc:
        logger.error("document %s: %s", document.pk, exc)
        _fail(attempt, PARSE_KILLED)
    except ParseCrashed as exc:
        logger.error("document %s: a reader failed: %s", document.pk, exc.detail)
        _fail(attempt, UNEXPECTED)
    except UnreadableDocument as exc:
        _fail(attempt, exc.reason)
    except ApplicationError as exc:
        # A provider's embeddings that are rate limited or down: retried like a busy database.
        if getattr(exc, "retryable", False):
            if document.attempts < settings.INGEST_MAX_ATTEMPTS:
                if not _queue_again(attempt, counted=True):
                    raise Superseded from None
                raise TransientIngestError(exc.message) from exc
            _fail(
                attempt,
                gettext_noop("%(message)s (tried %(count)s times; retry later)")
                % {"message": exc.message, "count": document.attempts},
            )
        else:
            _fail(attempt, exc.message)
    except (OperationalError, OSError) as exc:
        if document.attempts < settings.INGEST_MAX_ATTEMPTS:
            if not _queue_again(attempt, counted=True):
                raise Superseded from None
            raise TransientIngestError(str(exc)) from exc
        _fail(
            attempt,
            gettext_noop("Indexing failed %(count)s times (%(error)s). Try again later.")
            % {"count": document.attempts, "error": exc},
        )
    except MemoryError:
        _fail(
            attempt,
            gettext_noop("This file needs more memory than the server has; split it up."),
        )
    except Exception:
        logger.exception("ingestion of document %s failed", document.pk)
        _fail(attempt, UNEXPECTED)
    return DocumentStatus.FAILED


def _fail(attempt: Attempt, reason: str) -> None:
    if not mark_failed(attempt.document, reason, run=attempt.run):
        attempt.lost.set()
        raise Superseded


def _stale(cutoff: datetime) -> Q:
    """Abandoned: in progress with a heartbeat older than ``cutoff``, or queued and untouched
    since then."""
    return Q(status__in=IN_PROGRESS, heartbeat_at__lt=cutoff) | Q(
        status=DocumentStatus.QUEUED, updated_at__lt=cutoff
    )


def sweep_stale(*, requeue: Callable[[int], object], now: datetime | None = None) -> list[int]:
    """Find documents whose worker died (in progress, heartbeat older than
    ``INGEST_STALE_SECONDS``; or queued and untouched that long, e.g. when the web process that
    held them in its thread pool stopped) and queue them again (``requeue(document_id)``:
    the tasks module passes the ingestion task, so this module never imports it), or mark them
    failed after ``INGEST_MAX_ATTEMPTS``. Returns the ids queued again.

    A live attempt keeps its heartbeat fresh from a side thread, so it is never swept; the
    failure is conditional on the document still being stale and on the attempt the sweeper
    saw, so a heartbeat that lands meanwhile wins. Queuing again never runs a second reading of
    one document: the queued task claims it only if its heartbeat is still stale.
    """
    now = now or timezone.now()
    cutoff = now - stale_before()
    requeued: list[int] = []
    for document in Document.objects.filter(_stale(cutoff)).select_related("knowledge_base"):
        if document.attempts >= settings.INGEST_MAX_ATTEMPTS:
            mark_failed(
                document,
                gettext_noop(
                    "Indexing was interrupted repeatedly (the worker stopped). Retry it; if it "
                    "stops again, the file may be too large for this server."
                ),
                only_if=_stale(cutoff),
            )
            continue
        logger.warning("document %s was left in %s: queued again", document.pk, document.status)
        requeue(document.pk)
        requeued.append(document.pk)
    return requeued
