"""Liveness, readiness and metrics endpoints. They need no sign-in; /metrics needs its token or a
client on this machine."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from documents.stored_files import storage_check
from embeddings.model_files import resolve_model_path

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
    resolve_model_path(settings.EMBEDDING_MODEL)


def _check_folder(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / ".readyz"
    probe.write_bytes(b"")
    probe.unlink()


def _check_file_storage() -> None:
    """The media folder is writable, or the object store of ``STORAGE_URL`` takes a write, a
    read and a delete."""
    if settings.STORAGE_URL:
        storage_check()
    else:
        _check_folder(Path(settings.MEDIA_ROOT))


def readiness() -> dict[str, Any]:
    """Runs each readiness check; returns ``{"status": "ok"|"fail", "checks": {part: "ok"|
    "fail"}, "failing": [part, ...]}``. The answer names a failing part, never its error (which
    can hold host names, paths or credentials): that goes to the log."""
    checks: dict[str, str] = {}
    probes = [
        ("database", _check_database),
        ("embedding_model", _check_embedding_model),
        ("file_storage", _check_file_storage),
    ]
    if settings.SEARCH_BACKEND == "local":  # the postgres backend keeps no index on the host
        probes.insert(2, ("index_storage", lambda: _check_folder(Path(settings.INDEX_DIR))))
    if settings.REDIS_URL:
        probes.append(("redis", _check_redis))
    for name, probe in probes:
        try:
            probe()
            checks[name] = "ok"
        except Exception:
            logger.warning("readiness check %s failed", name, exc_info=True)
            checks[name] = "fail"
    failing = [name for name, value in checks.items() if value != "ok"]
    return {"status": "fail" if failing else "ok", "checks": checks, "failing": failing}


@login_not_required
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: the database answers, Redis when configured, the embedding model is on disk and the
    index folder and the file store are writable; 503 naming the failing parts otherwise."""
    report = readiness()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


def _metrics_allowed(request: HttpRequest) -> bool:
    """The right bearer token (compared in constant time), or, when not behind a proxy (whose
    own address would look local), a client on this machine."""
    token: str = settings.METRICS_TOKEN
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and constant_time_compare(presented.strip(), token):
        return True
    if settings.BEHIND_TLS_PROXY:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@login_not_required
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics of this process, for its token or a client on this machine."""
    if not _metrics_allowed(request):
        return HttpResponseForbidden(
            "Metrics need Authorization: Bearer <METRICS_TOKEN>.", content_type="text/plain"
        )
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
