"""ASGI entry point: HTTP through Django, websockets through Channels (daphne serves both)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from raggen.env import exit_on_bad_environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raggen.settings")

with exit_on_bad_environment():
    django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings

from raggen.routing import websocket_urlpatterns

if settings.BACKGROUND_TASKS == "thread":
    # Tasks run in this process: so does the sweeper that requeues abandoned ingestion.
    from documents.ingestion import sweep_stale
    from raggen.background import start_periodic

    start_periodic("ingest-sweeper", sweep_stale, settings.INGEST_SWEEP_SECONDS)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
