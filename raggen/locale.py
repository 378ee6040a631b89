"""The language of a websocket, chosen as ``LocaleMiddleware`` chooses it for a page: the
``django_language`` cookie (the switcher), then the browser's ``Accept-Language``, then
``LANGUAGE_CODE``. Error events and failure reasons sent over the socket are in it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.utils import translation


def language_from_scope(scope: dict[str, Any]) -> str:
    """The language code for the connection described by the ASGI ``scope``."""
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", ())
    }
    request = HttpRequest()
    request.COOKIES = parse_cookie(headers.get("cookie", ""))
    if "accept-language" in headers:
        request.META["HTTP_ACCEPT_LANGUAGE"] = headers["accept-language"]
    return translation.get_language_from_request(request)


class WebsocketLocaleMiddleware:
    """Activates the handshake's language for the whole connection (the consumer and the
    tasks it starts inherit it), and records it as ``scope["language"]``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        language = language_from_scope(scope)
        with translation.override(language):
            return await self.app({**scope, "language": language}, receive, send)
