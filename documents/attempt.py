"""One ingestion attempt's hold on its document (:mod:`documents.ingestion` does the work).

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
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from documents.models import Document, DocumentStatus
from documents.progress import ProgressManager

# The heartbeat's warnings belong to the ingestion they keep alive.
logger = logging.getLogger("documents.ingestion")

IN_PROGRESS = (DocumentStatus.EXTRACTING, DocumentStatus.CHUNKING, DocumentStatus.EMBEDDING)


class Superseded(Exception):
    """This attempt no longer owns its document: the sweeper or a retry gave it to another
    attempt, or it was deleted. The attempt stops; what it wrote is the new owner's to clear."""


def stale_before() -> timedelta:
    return timedelta(seconds=settings.INGEST_STALE_SECONDS)


def _heartbeat_interval() -> float:
    """Five heartbeats within the time after which the sweeper takes a document as abandoned,
    at most 30 s apart."""
    return min(30.0, settings.INGEST_STALE_SECONDS / 5)


def claim(document_id: int) -> Document | None:
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
        if document.status in IN_PROGRESS and heartbeat and now - heartbeat < stale_before():
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


class Attempt:
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
        """:meth:`write`, raising :class:`Superseded` when the document is no longer ours."""
        if not self.write(**fields):
            raise Superseded


class Heartbeat:
    """While the block runs, a side thread writes the attempt's heartbeat every
    :func:`_heartbeat_interval` seconds, so that a long step (a slow parse, a slow embedding
    batch) is never taken for a dead worker. A heartbeat that finds the document no longer the
    attempt's sets ``lost``; the work stops at its next check."""

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"raggen-heartbeat-{attempt.document.pk}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
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


class Progress:
    """Writes status, percent and heartbeat, and tells the browser; at most once a second
    unless the stage changes. Raises :class:`Superseded` when the document is no longer the
    attempt's."""

    def __init__(self, attempt: Attempt) -> None:
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
