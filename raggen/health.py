"""Liveness, readiness and metrics endpoints. They need no sign-in."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

logger = logging.getLogger(__name__)


@login_not_required
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_redis() -> None:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def _check_embedding_model() -> None:
    from embeddings.model_files import resolve_model_path

    resolve_model_path(settings.EMBEDDING_MODEL)


def readiness() -> dict[str, Any]:
    """Runs each readiness check; returns ``{"status": "ok"|"fail", "checks": {...}}``."""
    checks: dict[str, str] = {}
    probes = [("database", _check_database), ("embedding_model", _check_embedding_model)]
    if settings.REDIS_URL:
        probes.append(("redis", _check_redis))
    for name, probe in probes:
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:
            logger.warning("readiness check %s failed: %s", name, exc)
            checks[name] = f"fail: {exc}"
    ok = all(value == "ok" for value in checks.values())
    return {"status": "ok" if ok else "fail", "checks": checks}


@login_not_required
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: the database answers, Redis when configured, and the embedding model is on disk."""
    report = readiness()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


@login_not_required
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics of this process."""
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
