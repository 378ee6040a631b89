"""The Celery app. Configuration comes from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raggen.settings")

app = Celery("raggen")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _on_worker_init(**_: Any) -> None:
    # Only a worker counts its tasks through signals; the web process's thread pool counts its own.
    from django.conf import settings
    from prometheus_client import start_http_server

    import raggen.worker_signals  # noqa: F401  (connects the task signals)

    if settings.WORKER_METRICS_PORT:
        start_http_server(settings.WORKER_METRICS_PORT, addr="127.0.0.1")


@worker_ready.connect
def _on_worker_ready(**_: Any) -> None:
    # Each worker looks for documents whose worker died and queues them again.
    from django.conf import settings

    from documents.ingestion import sweep_stale
    from raggen.background import start_periodic

    sweep_stale()
    start_periodic("ingest-sweeper", sweep_stale, settings.INGEST_SWEEP_SECONDS)
