"""The web process: daphne, with request bodies capped before they are buffered.

``python -m raggen.server [daphne's options] raggen.asgi:application`` takes daphne's own command
line; ``make run``, the Docker image and the tests start the server this way.

daphne (Twisted) stores a whole request body, then queues all of it for the application at once,
before Django sees a byte: an anonymous 1 GB POST took a gigabyte of memory. Here a request whose
Content-Length is over ``REQUEST_MAX_BYTES`` is answered 413 as soon as its headers are read, and
a chunked one as soon as what arrived passes the limit (what arrived is on disk, in Twisted's
temporary file, never in memory). The connection then reads and drops whatever the client still
sends for a moment, so that the client reads the 413 rather than a reset, and closes.
"""

from __future__ import annotations

# daphne.server installs Twisted's asyncio reactor, so it comes before any other Twisted import.
import daphne.server  # isort: skip

import io
import logging
import os
import sys
from typing import Any, ClassVar

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest

from raggen.bodylimit import CONTENT_TYPE, refusal_body
from raggen.env import exit_on_bad_environment

logger = logging.getLogger("raggen.server")

#: How long a refused connection keeps reading (and dropping) what its client still sends.
LINGER_SECONDS = 2.0


def _drop(data: bytes) -> None:
    """Reads nothing into memory: what a refused client still sends is dropped."""


class CappedWebRequest(WebRequest):  # type: ignore[misc]
    """daphne's request, refusing a body over ``max_body_bytes`` before it is buffered."""

    #: Set by :func:`main` from ``REQUEST_MAX_BYTES``; 0 would mean no limit.
    max_body_bytes: ClassVar[int] = 0
    content: Any  # Twisted's: where the body is stored (None until gotLength)
    _body_bytes = 0
    _refused = False

    def gotLength(self, length: int | None) -> None:
        # Called by Twisted's HTTPChannel once the headers are read; None for a chunked body.
        if self.max_body_bytes and length is not None and length > self.max_body_bytes:
            self._refuse(length)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(data)
        if self.max_body_bytes and self._body_bytes > self.max_body_bytes:
            self._refuse(None)
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # A refused request never reaches daphne's processing (nor the application).
        if self._refused:
            return
        super().requestReceived(command, path, version)

    def _refuse(self, declared: int | None) -> None:
        self._refused = True
        channel: Any = self.channel
        transport: Any = channel.transport
        if self.content is not None:
            self.content.close()
        self.content = io.BytesIO()
        # Twisted answers "Expect: 100-continue" right after gotLength: not after our 413.
        self.requestHeaders.removeHeader(b"Expect")
        body = refusal_body(self.max_body_bytes)
        transport.write(
            b"HTTP/1.1 413 Content Too Large\r\n"
            b"Content-Type: " + CONTENT_TYPE + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"Connection: close\r\n\r\n" + body
        )
        channel.dataReceived = _drop
        channel.setTimeout(None)
        transport.loseWriteConnection()
        channel.callLater(LINGER_SECONDS, lambda: _close(transport))
        peer = transport.getPeer()
        logger.warning(
            "refused a request body over %d bytes (%s) from %s",
            self.max_body_bytes,
            f"Content-Length {declared}" if declared is not None else "chunked",
            getattr(peer, "host", peer),
        )


def _close(transport: Any) -> None:
    if transport.connected:
        transport.abortConnection()


class CappedHTTPFactory(HTTPFactory):  # type: ignore[misc]
    """daphne's HTTP factory, building :class:`CappedWebRequest` requests."""

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = CappedWebRequest
        return protocol


def main(argv: list[str] | None = None) -> None:
    """Runs daphne's command line with the capped request."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raggen.settings")
    with exit_on_bad_environment():
        from django.conf import settings

        CappedWebRequest.max_body_bytes = settings.REQUEST_MAX_BYTES
    # daphne's Server.run() builds its HTTP factory from this module-level name.
    daphne.server.HTTPFactory = CappedHTTPFactory
    CommandLineInterface().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
