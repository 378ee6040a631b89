"""The Celery app. Configuration comes from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_ready

from core.background import periodic_start_all

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
    # Each worker runs the apps' periodic jobs once at once (the sweeper looks for documents whose
    # worker died and queues them again), then on their interval.
    periodic_start_all(run_now=True)
