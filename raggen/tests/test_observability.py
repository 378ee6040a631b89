from __future__ import annotations

import json
import logging

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from core.context import request_id_var
from raggen.observability import RequestIdFilter, RequestIdMiddleware

pytestmark = pytest.mark.django_db


def _logging_view(request: HttpRequest) -> HttpResponse:
    logging.getLogger("raggen.test").warning("inside the view")
    return HttpResponse("ok")


def test_every_log_line_of_a_request_carries_its_request_id(caplog):
    middleware = RequestIdMiddleware(_logging_view)
    caplog.handler.addFilter(RequestIdFilter())
    request = RequestFactory().get("/", HTTP_X_REQUEST_ID="abc-123")
    with caplog.at_level(logging.WARNING):
        response = middleware(request)
    assert response["X-Request-ID"] == "abc-123"
    record = next(r for r in caplog.records if r.getMessage() == "inside the view")
    assert record.request_id == "abc-123"
    assert request_id_var.get() == "-"


def test_a_bad_incoming_request_id_is_replaced():
    middleware = RequestIdMiddleware(lambda request: HttpResponse("ok"))
    response = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="bad id\nwith newline"))
    assert len(response["X-Request-ID"]) == 32


def test_json_log_format_writes_one_json_object_per_line(settings):
    import io

    from django.utils.log import configure_logging

    config = json.loads(json.dumps(settings.LOGGING))
    config["formatters"]["json"]["()"] = "pythonjsonlogger.json.JsonFormatter"
    stream = io.StringIO()
    config["handlers"]["console"]["formatter"] = "json"
    config["handlers"]["console"]["stream"] = stream
    config["handlers"]["console"]["class"] = "logging.StreamHandler"
    configure_logging("logging.config.dictConfig", config)
    try:
        token = request_id_var.set("req-9")
        logging.getLogger("raggen.json").warning("hello %s", "world")
        request_id_var.reset(token)
        line = json.loads(stream.getvalue().strip().splitlines()[-1])
        assert line["message"] == "hello world"
        assert line["request_id"] == "req-9"
        assert line["level"] == "WARNING"
    finally:
        configure_logging("logging.config.dictConfig", settings.LOGGING)
