"""The machinery the loopback fakes share: a threaded HTTP/1.1 server on 127.0.0.1, a request
log, queued failures, and a stream writer that tortures clients the way real networks do
(pieces split at arbitrary bytes, coalesced events, stalls, drops, a malformed chunk)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    # The default listen backlog of 5 resets bursts of connections (100 concurrent chats).
    request_queue_size = 256
    daemon_threads = True


class ClientGone(Exception):
    """The client closed the connection."""


@dataclass
class Script:
    """How the fake streams its next answers. Every field defaults to a well-behaved server."""

    tokens: list[str] | None = None  # the answer's pieces; None: a Russian echo of the question
    headers_delay: float = 0.0  # before the status line
    first_token_delay: float = 0.0  # after the headers, before the first body byte
    token_delay: float = 0.0  # between events
    split_every: int = 0  # write each event in pieces of this many bytes, flushing each
    coalesce: bool = False  # write all events in one piece
    malformed_at: int | None = None  # this event index is replaced by a malformed chunk
    drop_after: int | None = None  # close the socket abruptly after this many events
    stall_after: int | None = None  # stop writing after this many events; keep the socket open
    finish_reason: str = "stop"  # stop | length | content_filter
    omit_done: bool = False  # SSE: end without the [DONE] event
    crlf: bool = False  # SSE: \r\n line endings
    ping: bool = False  # SSE: a ": ping" comment before every event
    wrong_content_type: bool = False  # a 200 stream sent as application/json
    no_usage: bool = False
    rewrite_at: int | None = None  # Yandex: this line's text is not a prefix extension
    repeat_at: int | None = None  # Yandex: this line is sent twice (a zero delta)
    error_line_after: int | None = None  # Yandex: an {"error":...} line after this many lines


@dataclass
class Failure:
    status: int
    body: Any = None  # None: the provider's own error body for the status
    headers: dict[str, str] = field(default_factory=dict)
    path: str = ""  # only requests whose path starts with this fail
    delay: float = 0.0


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.body.decode()))


WORD = re.compile(r"\S+\s*")


def echo_tokens(question: str) -> list[str]:
    """The default answer: deterministic Russian text that quotes the question."""
    question = " ".join(question.split())[:200] or "пустой вопрос"
    return WORD.findall(f"Ответ на вопрос «{question}»: всё в порядке.")


def estimate_tokens(text: str) -> int:
    return len(text) // 3 + 1


class Exchange:
    """One request and its response, written by a fake's route handler."""

    def __init__(self, handler: BaseHTTPRequestHandler, request: RecordedRequest, fake: FakeServer):
        self.handler = handler
        self.request = request
        self.fake = fake
        self.streaming = False

    @property
    def sock(self) -> socket.socket:
        sock: socket.socket = self.handler.connection
        return sock

    def pause(self, seconds: float) -> None:
        """Sleep, noticing at once when the client hangs up (or the fake stops)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.fake.stopping.is_set():
                raise ClientGone
            readable, _, _ = select.select([self.sock], [], [], min(left, 0.05))
            if readable:
                try:
                    peek = self.sock.recv(1, socket.MSG_PEEK)
                except ValueError:  # TLS sockets cannot peek: wait without noticing
                    time.sleep(min(left, 0.05))
                    continue
                except OSError:
                    raise ClientGone from None
                if not peek:
                    raise ClientGone

    def _raw(self, data: bytes) -> None:
        try:
            self.handler.wfile.write(data)
            self.handler.wfile.flush()
        except OSError:
            raise ClientGone from None

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_bytes(status, body, "application/json; charset=utf-8", headers)

    def send_bytes(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        h = self.handler
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        self._raw(body)

    def start_stream(self, content_type: str, headers: dict[str, str] | None = None) -> None:
        h = self.handler
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        self.handler.wfile.flush()
        self.streaming = True

    def write_chunk(self, data: bytes) -> None:
        if data:
            self._raw(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def end_stream(self) -> None:
        self._raw(b"0\r\n\r\n")

    def drop(self) -> None:
        """Close the socket abruptly, without the terminating chunk."""
        with contextlib.suppress(OSError):
            self.handler.wfile.flush()
            self.sock.shutdown(socket.SHUT_RDWR)

    def stream_events(self, events: list[bytes], script: Script, malformed: bytes) -> None:
        """Write ``events`` through the torture writer that ``script`` describes, then end
        the stream (or drop or stall it). Records how the stream ended on the fake."""
        self.pause(script.first_token_delay)
        if script.coalesce:
            events = [b"".join(events)]
        for index, event in enumerate(events):
            if script.drop_after is not None and index >= script.drop_after:
                self.fake.record_end("dropped")
                self.drop()
                return
            if script.stall_after is not None and index >= script.stall_after:
                self.fake.record_end("stalled")
                self.pause(3600)
            if index and script.token_delay:
                self.pause(script.token_delay)
            data = malformed if index == script.malformed_at else event
            self._write_split(data, script.split_every)
        self.end_stream()
        self.fake.record_end("complete")

    def _write_split(self, data: bytes, every: int) -> None:
        if every <= 0:
            self.write_chunk(data)
            return
        for start in range(0, len(data), every):
            self.write_chunk(data[start : start + every])
            self.pause(0.001)


Route = Callable[[Exchange], None]


class FakeServer:
    """A loopback HTTP server. Subclasses register routes in ``routes()`` and produce error
    bodies in ``error_body()``. Use as a context manager or call start()/stop()."""

    label = "fake"

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requested_port = port
        self.script = Script()
        self.failures: list[Failure] = []
        self.requests: list[RecordedRequest] = []
        self.stream_ends: list[str] = []  # complete | dropped | stalled | client_closed
        self.client_closed = threading.Event()
        self.stopping = threading.Event()
        self.max_in_flight = 100
        self.in_flight = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._tls: ssl.SSLContext | None = None
        self._thread: threading.Thread | None = None

    # --- scripting ------------------------------------------------------------------------
    def fail(
        self,
        status: int,
        body: Any = None,
        *,
        times: int = 1,
        path: str = "",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """The next ``times`` requests (whose path starts with ``path``) get ``status``."""
        for _ in range(times):
            self.failures.append(Failure(status, body, dict(headers or {}), path, delay))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def record_end(self, how: str) -> None:
        with self._lock:
            self.stream_ends.append(how)
        if how == "client_closed":
            self.client_closed.set()

    def wait_client_closed(self, timeout: float = 5.0) -> bool:
        return self.client_closed.wait(timeout)

    # --- to override ------------------------------------------------------------------------
    def routes(self) -> dict[tuple[str, str], Route]:
        raise NotImplementedError

    def dynamic_route(self, method: str, path: str) -> Route | None:
        return None

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "code": status}}

    def check_auth(self, ex: Exchange) -> bool:
        return True

    # --- serving ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "the fake is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def use_tls(self, certfile: str, keyfile: str) -> None:
        """Serve HTTPS with this certificate (call before ``start``), e.g. one issued by a
        throwaway CA, to exercise a client's CA-bundle setting."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        self._tls = context

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("%s: %s", fake.label, format % args)

            def do_GET(self) -> None:
                fake._dispatch(self)

            def do_POST(self) -> None:
                fake._dispatch(self)

        server = _Server((self.host, self.requested_port), Handler)
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=self.label, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until interrupted (for the management command)."""
        with contextlib.suppress(KeyboardInterrupt):
            while not self.stopping.wait(0.5):
                pass

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = RecordedRequest(handler.command, parts.path, parts.query, headers, body)
        with self._lock:
            self.requests.append(request)
        ex = Exchange(handler, request, self)
        try:
            self._serve(ex)
        except ClientGone:
            self.record_end("client_closed")

    def _serve(self, ex: Exchange) -> None:
        ex.pause(self.script.headers_delay)
        method, path = ex.request.method, ex.request.path
        route = self.routes().get((method, path)) or self.dynamic_route(method, path)
        if route is None:
            ex.send_json(404, self.error_body(404, f"no route {method} {path}"))
            return
        failure = self._next_failure(path)
        if failure is not None:
            ex.pause(failure.delay)
            body = failure.body
            if body is None:
                body = self.error_body(failure.status, _REASONS.get(failure.status, "error"))
            if isinstance(body, bytes):
                ex.send_bytes(failure.status, body, "text/plain", failure.headers)
            else:
                ex.send_json(failure.status, body, failure.headers)
            return
        if not self.check_auth(ex):
            return
        with self._lock:
            if self.in_flight >= self.max_in_flight:
                busy = True
            else:
                busy = False
                self.in_flight += 1
        if busy:
            ex.send_json(429, self.error_body(429, "too many requests in flight"))
            return
        try:
            route(ex)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _next_failure(self, path: str) -> Failure | None:
        with self._lock:
            for index, failure in enumerate(self.failures):
                if path.startswith(failure.path):
                    return self.failures.pop(index)
        return None


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Permission denied",
    404: "Not Found",
    413: "Request Entity Too Large",
    422: "Unprocessable Entity",
    429: "Too many requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@contextlib.contextmanager
def running(fake: FakeServer) -> Iterator[FakeServer]:
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
