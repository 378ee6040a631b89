"""Thin Celery tasks: the work lives in ``documents.ingestion``."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.utils import translation

from core.background import enqueue
from documents import ingestion


@shared_task(
    name="documents.document_ingest",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ingestion.TransientIngestError,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=5,
)
def document_ingest(self: Task[Any, Any], document_id: int) -> str:
    """Ingest one document (see ``ingestion.document_ingest``). Its failure reason is stored in
    English, whatever the language of the request that queued it, and translated when shown."""
    with translation.override("en"):
        return ingestion.document_ingest(document_id)


@shared_task(name="documents.sweep_stale")
def sweep_stale() -> list[int]:
    """Queue again the documents whose worker died mid-way (the app's periodic job)."""
    return ingestion.sweep_stale(requeue=_requeue)


def _requeue(document_id: int) -> None:
    enqueue(document_ingest, document_id)


document_ingest_task = document_ingest
sweep_stale_task = sweep_stale
