"""ASGI entry point: HTTP through Django, websockets through Channels (daphne serves both)."""

from __future__ import annotations

import os
from functools import partialmethod
from typing import Any

from django.core.asgi import get_asgi_application

from raggen.env import exit_on_bad_environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raggen.settings")

with exit_on_bad_environment():
    django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings

from core.background import periodic_start_all
from raggen.bodylimit import BodySizeLimitMiddleware
from raggen.locale import WebsocketLocaleMiddleware
from raggen.routing import websocket_urlpatterns


def _leave_form_bodies_to_django() -> None:
    """Twisted parses a POSTed form body itself (into ``request.args``, which daphne never reads)
    before daphne passes the request on, and answers one it cannot parse, such as a multipart
    body with no parts, with a bare 400 without a body or a Content-Type. Django parses bodies
    itself: Twisted is told not to, so such a request reaches the API and gets a JSON answer."""
    from daphne.http_protocol import WebRequest

    WebRequest.__init__ = partialmethod(WebRequest.__init__, parsePOSTFormSubmission=False)


_leave_form_bodies_to_django()


class _PeriodicJobsOnFirstRequest:
    """With tasks on this process's thread pool, this process also runs the periodic jobs the
    apps registered (the sweeper that requeues abandoned ingestion). They start on the first
    HTTP request, not at import, so that importing the application (tests, tools) starts no
    thread."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.started = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.started and settings.BACKGROUND_TASKS == "thread":
            self.started = True
            periodic_start_all()
        await self.app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        # Bodies over REQUEST_MAX_BYTES answer 413 before Django reads them (raggen.server already
        # refuses them in daphne; this holds under any other server).
        "http": BodySizeLimitMiddleware(_PeriodicJobsOnFirstRequest(django_asgi_app)),
        "websocket": AllowedHostsOriginValidator(
            WebsocketLocaleMiddleware(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
