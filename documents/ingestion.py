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

Each claim of a document starts a new attempt (``Document.ingest_run``). A side thread keeps the
attempt's heartbeat fresh while the work runs, so the sweeper never takes a long but live parse
for a dead one, and every write of the attempt is conditional on the document still being its
own: once the sweeper (or a retry) has given the document to another attempt, the old one's
writes change nothing and it stops at its next step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, connections, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from core.errors import ApplicationError
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

logger = logging.getLogger(__name__)

IN_PROGRESS = (DocumentStatus.EXTRACTING, DocumentStatus.CHUNKING, DocumentStatus.EMBEDDING)

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


class _Superseded(Exception):
    """This attempt no longer owns its document: the sweeper or a retry gave it to another
    attempt, or it was deleted. The attempt stops; what it wrote is the new owner's to clear."""


def _stale_before() -> timedelta:
    return timedelta(seconds=settings.INGEST_STALE_SECONDS)


def _heartbeat_interval() -> float:
    """Five heartbeats within the time after which the sweeper takes a document as abandoned,
    at most 30 s apart."""
    return min(30.0, settings.INGEST_STALE_SECONDS / 5)


def timeout_reason(seconds: int) -> str:
    """The failure reason of a file that took longer than ``seconds`` to read (stored in
    English, translated when shown: ``documents.reasons``)."""
    if seconds >= 120 and seconds % 60 == 0:
        return PARSE_TIMEOUT_MINUTES % {"count": seconds // 60}
    return PARSE_TIMEOUT_SECONDS % {"count": seconds}


def _claim(document_id: int) -> Document | None:
    """Take the document for a new attempt, or ``None`` when there is nothing to do: it is
    gone, indexed, failed, or another attempt is on it (its heartbeat is fresh)."""
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
        document.ingest_run += 1
        document.heartbeat_at = now
        document.save(
            update_fields=[
                "status",
                "progress",
                "failure_reason",
                "attempts",
                "ingest_run",
                "heartbeat_at",
            ]
        )
    return document


class _Attempt:
    """One attempt's hold on its document. Every write goes through :meth:`write`, an
    ``UPDATE ... WHERE ingest_run = <this attempt>`` whose row count says whether the document
    is still this attempt's; once it is not, ``lost`` is set for good."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.run = document.ingest_run
        self.lost = threading.Event()

    def write(self, **fields: Any) -> bool:
        """Apply ``fields`` if the document is still this attempt's; returns whether it was."""
        if self.lost.is_set():
            return False
        updated = Document.objects.filter(pk=self.document.pk, ingest_run=self.run).update(**fields)
        if updated != 1:
            self.lost.set()
        return updated == 1

    def require(self, **fields: Any) -> None:
        """:meth:`write`, raising :class:`_Superseded` when the document is no longer ours."""
        if not self.write(**fields):
            raise _Superseded


class _Heartbeat:
    """While the block runs, a side thread writes the attempt's heartbeat every
    :func:`_heartbeat_interval` seconds, so that a long step (a slow parse, a slow embedding
    batch) is never taken for a dead worker. A heartbeat that finds the document no longer the
    attempt's sets ``lost``; the work stops at its next check."""

    def __init__(self, attempt: _Attempt) -> None:
        self.attempt = attempt
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"raggen-heartbeat-{attempt.document.pk}", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        # A heartbeat waiting on a database lock ends within the database's own timeout; the
        # thread is a daemon, so even then the attempt does not wait for it past a minute.
        self._thread.join(timeout=60)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(_heartbeat_interval()):
                try:
                    if not self.attempt.write(heartbeat_at=timezone.now()):
                        logger.warning(
                            "document %s: attempt %s no longer owns it; stopping",
                            self.attempt.document.pk,
                            self.attempt.run,
                        )
                        return
                except DatabaseError:
                    logger.warning("could not write a heartbeat", exc_info=True)
        finally:
            connections.close_all()  # this thread's own connections


def _discard_chunks(document: Document) -> None:
    """Remove what an earlier, interrupted attempt left behind."""
    if Chunk.objects.filter(document=document).exists():
        remove_document(knowledge_base=document.knowledge_base, document_id=document.pk)
        Chunk.objects.filter(document=document).delete()


class _Progress:
    """Writes status, percent and heartbeat, and tells the browser; at most once a second
    unless the stage changes. Raises :class:`_Superseded` when the document is no longer the
    attempt's."""

    def __init__(self, attempt: _Attempt) -> None:
        self.attempt = attempt
        self.manager = ProgressManager(attempt.document.knowledge_base_id)
        self._last = 0.0
        self._status = ""

    def __call__(self, status: str, percent: int, pages_done: int | None = None) -> None:
        now = time.monotonic()
        if status == self._status and now - self._last < 1.0:
            return
        self._last, self._status = now, status
        self.attempt.require(status=status, progress=percent, heartbeat_at=timezone.now())
        self.manager.send(self.attempt.document.pk, status, percent, pages_done=pages_done)


def _chunking_options(kb: KnowledgeBase) -> ChunkingOptions:
    return ChunkingOptions(
        split_rule=kb.split_rule,
        max_tokens=kb.max_chunk_tokens,
        overlap_tokens=kb.overlap_tokens,
        heading_context=kb.heading_context,
    )


def _run(attempt: _Attempt) -> tuple[int, int | None]:
    """Read (in the child), chunk, embed and index; returns (chunk count, page count)."""
    document = attempt.document
    kb = document.knowledge_base
    progress = _Progress(attempt)
    progress(DocumentStatus.EXTRACTING, 1)
    ordinal = pages_done = 0
    with Extraction(
        Path(document.file.path),
        document.file_type,
        options=_chunking_options(kb),
        max_pages=settings.INGEST_MAX_PAGES,
        timeout=settings.INGEST_PARSE_TIMEOUT,
        memory_mb=settings.INGEST_PARSE_MEMORY_MB,
        cancelled=attempt.lost.is_set,
    ) as reading:
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


def _store(attempt: _Attempt, rows: list[Chunk], progress: _Progress) -> None:
    """Write a batch of chunk rows, in one transaction with the check that the document is
    still the attempt's (so a superseded attempt adds no row after the new one cleared them),
    then embed and index them."""
    with transaction.atomic():
        attempt.require(heartbeat_at=timezone.now())
        Chunk.objects.bulk_create(rows)
    index_chunks(
        knowledge_base=attempt.document.knowledge_base,
        chunks=rows,
        # A switch of encoder re-embeds the whole knowledge base within this call: its progress
        # is this document's (and keeps its heartbeat fresh).
        progress=lambda done, total: progress(
            DocumentStatus.EMBEDDING, 5 + int(90 * done / max(total, 1))
        ),
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


def _finish(attempt: _Attempt, chunk_count: int, page_count: int | None) -> None:
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


def _queue_again(attempt: _Attempt, *, counted: bool) -> bool:
    """Put the document back in the queue (a transient error, or this process stopping);
    an attempt that is not ``counted`` does not use up one of ``INGEST_MAX_ATTEMPTS``, and the
    document is due at the next sweep. Returns whether the document was still the attempt's."""
    fields: dict[str, Any] = {"status": DocumentStatus.QUEUED, "heartbeat_at": None}
    if counted:
        fields["updated_at"] = timezone.now()
    else:
        fields["attempts"] = F("attempts") - 1
        fields["updated_at"] = timezone.now() - _stale_before()
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
    document = _claim(document_id)
    if document is None:
        return "skipped"
    attempt = _Attempt(document)
    with _Heartbeat(attempt):
        try:
            return _attempt(attempt)
        except _Superseded:
            logger.warning(
                "document %s: attempt %s was superseded; its work is dropped",
                document.pk,
                attempt.run,
            )
            return "superseded"


def _attempt(attempt: _Attempt) -> str:
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
    except _Superseded:
        raise
    except ExtractionCancelled:
        if attempt.lost.is_set():
            raise _Superseded from None
        logger.warning(
            "document %s: reading stopped as the process stops; queued again", document.pk
        )
        if not _queue_again(attempt, counted=False):
            raise _Superseded from None
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
                    raise _Superseded from None
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
                raise _Superseded from None
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


def _fail(attempt: _Attempt, reason: str) -> None:
    if not mark_failed(attempt.document, reason, run=attempt.run):
        attempt.lost.set()
        raise _Superseded


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
    cutoff = now - _stale_before()
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
