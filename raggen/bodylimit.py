"""Request bodies larger than ``REQUEST_MAX_BYTES`` are refused with 413 before anything holds them.

Two lines of defence. The web process (:mod:`raggen.server`) refuses such a body inside daphne,
from its Content-Length or as a chunked body passes the limit, before daphne buffers it. This
ASGI middleware refuses the same under any server (uvicorn, daphne started by hand): Django reads
the whole body before it calls a view, so a view-level check would come too late.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATUS = 413
CONTENT_TYPE = b"application/json"


def refusal_body(limit: int) -> bytes:
    """The JSON answer to a body over ``limit`` bytes (``detail`` and ``code``, as the API's
    errors have)."""
    megabytes = max(1, limit // (1024 * 1024))
    return json.dumps(
        {
            "detail": f"The request body is larger than the limit of {megabytes} MB.",
            "code": "request_too_large",
            "limit_bytes": limit,
        }
    ).encode()


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length of ASGI ``headers``, or None when absent or not a number."""
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else None
    return None


class BodySizeLimitMiddleware:
    """Answers 413 to an HTTP request whose Content-Length is over ``REQUEST_MAX_BYTES``
    without calling the application, and to one whose body turns out larger while it is read
    (the application is told the client went away, so it drops what it read)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit: int = settings.REQUEST_MAX_BYTES
        length = declared_length(scope.get("headers", []))
        if length is not None and length > limit:
            await self._refuse(send, limit)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if exceeded and not started:
            await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = refusal_body(limit)
        await send(
            {
                "type": "http.response.start",
                "status": STATUS,
                "headers": [
                    (b"content-type", CONTENT_TYPE),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
