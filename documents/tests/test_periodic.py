"""The documents app registers its periodic job; the roof starts it without naming it."""

from __future__ import annotations

from core import background
from documents.tasks import sweep_stale


def test_the_documents_app_registers_the_ingestion_sweeper(settings):
    jobs = {job.name: job for job in background.periodic_jobs()}
    assert jobs["ingest-sweeper"].job is sweep_stale
    settings.INGEST_SWEEP_SECONDS = 7
    assert jobs["ingest-sweeper"].interval() == 7.0
