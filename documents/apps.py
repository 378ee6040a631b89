from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings

from core.background import periodic_register


class DocumentsConfig(AppConfig):
    name = "documents"
    verbose_name = "Knowledge bases and documents"

    def ready(self) -> None:
        # The sweeper that queues again the documents whose worker died. The roof starts the
        # registered jobs (raggen.asgi on the first request in thread mode, the Celery worker
        # when it is ready), without naming them.
        from documents import checks  # noqa: F401  (registers the system checks)
        from documents.tasks import sweep_stale  # needs the models: not at import

        periodic_register(
            name="ingest-sweeper",
            job=sweep_stale,
            interval=lambda: float(settings.INGEST_SWEEP_SECONDS),
        )
