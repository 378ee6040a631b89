"""Request ids on log lines, and the HTTP request metrics: the middlewares and the log filter
that settings name. The context variables they set live in ``core.context``, the counters in
``core.metrics``."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from core.context import current_request, request_id_var
from core.metrics import HTTP_LATENCY, HTTP_REQUESTS

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


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
