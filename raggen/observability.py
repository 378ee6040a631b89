"""Request ids on log lines, and Prometheus metrics.

The request id lives in a context variable, so it follows a request through ``sync_to_async``
and into the log lines of the code it calls.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
#: The request being served, for code far from the view that must say who acted (the audit
#: trail of a deletion); ``None`` in tasks and commands.
current_request: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

HTTP_REQUESTS = Counter(
    "raggen_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "raggen_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)
TASKS = Counter("raggen_tasks_total", "Background tasks finished", ["task", "outcome"])
TASK_DURATION = Histogram("raggen_task_duration_seconds", "Background task duration", ["task"])
ANSWERS = Counter("raggen_answers_total", "Chat answers finished", ["provider", "model", "status"])
ANSWER_TOKENS = Counter(
    "raggen_answer_tokens_total", "Tokens of chat answers", ["provider", "kind"]
)
FIRST_TOKEN = Histogram(
    "raggen_answer_first_token_seconds",
    "Time from a question to its first answer token",
    ["provider"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)


def record_answer(
    provider: str,
    model: str,
    status: str,
    *,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    first_token_ms: int | None = None,
) -> None:
    """Count one finished answer (complete, stopped or failed) and its tokens."""
    ANSWERS.labels(provider, model, status).inc()
    ANSWER_TOKENS.labels(provider, "prompt").inc(prompt_tokens)
    ANSWER_TOKENS.labels(provider, "completion").inc(completion_tokens)
    if first_token_ms is not None:
        FIRST_TOKEN.labels(provider).observe(first_token_ms / 1000)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _incoming_id(request: HttpRequest) -> str:
    candidate = request.headers.get("X-Request-ID", "")
    return candidate if _VALID_ID.match(candidate) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Takes a sane ``X-Request-ID`` from the client or makes one, and echoes it back."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        token = request_id_var.set(_incoming_id(request))
        request_token = current_request.set(request)
        try:
            response: HttpResponse = self.get_response(request)
            response["X-Request-ID"] = request_id_var.get()
            return response
        finally:
            current_request.reset(request_token)
            request_id_var.reset(token)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        token = request_id_var.set(_incoming_id(request))
        request_token = current_request.set(request)
        try:
            get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
            response = await get_response(request)
            response["X-Request-ID"] = request_id_var.get()
            return response
        finally:
            current_request.reset(request_token)
            request_id_var.reset(token)


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.route or match.view_name or "unknown"


class MetricsMiddleware:
    """Counts requests and their latency by method, URL pattern (not raw path) and status."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        started = time.perf_counter()
        response: HttpResponse = self.get_response(request)
        self._record(request, response, started)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        response = await get_response(request)
        self._record(request, response, started)
        return response

    @staticmethod
    def _record(request: HttpRequest, response: HttpResponse, started: float) -> None:
        route = _route(request)
        HTTP_REQUESTS.labels(request.method or "", route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method or "", route).observe(time.perf_counter() - started)
