from __future__ import annotations

import pytest

from conftest import free_port
from raggen import health

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_sign_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_embedding_model(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "embedding_model": "ok",
            "index_storage": "ok",
            "file_storage": "ok",
        },
        "failing": [],
    }


def test_readyz_fails_when_configured_redis_is_down(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["redis"] == "fail"
    assert body["failing"] == ["redis"]
    assert body["checks"]["database"] == "ok"


def test_readyz_fails_when_the_embedding_model_folder_is_missing(client, settings, tmp_path):
    settings.EMBEDDING_MODEL = str(tmp_path / "nowhere")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["embedding_model"]
    assert "no sentence-transformers model" not in response.content.decode()  # in the log only


@pytest.mark.redis
def test_readyz_checks_a_live_redis(client, settings, redis_server):
    settings.REDIS_URL = redis_server
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "ok"


def test_metrics_count_requests_by_route_not_raw_path(client):
    client.get("/healthz")
    client.get("/accounts/login/")
    body = client.get("/metrics").content.decode()
    assert 'raggen_http_requests_total{method="GET",route="healthz",status="200"}' in body
    assert "raggen_http_request_duration_seconds_bucket" in body
    assert "raggen_tasks_total" in body or "raggen_task_duration_seconds" in body


@pytest.mark.django_db
def test_readiness_with_the_postgres_backend_does_not_ask_for_an_index_folder(settings, tmp_path):
    # A host of a postgres-backend deployment keeps no index: a read-only INDEX_DIR is no reason
    # to take it out of service.
    settings.SEARCH_BACKEND = "postgres"
    settings.INDEX_DIR = tmp_path / "not-here" / "index"
    (tmp_path / "not-here").write_text("a file where the folder would be")
    checks = health.readiness()["checks"]
    assert "index_storage" not in checks
    settings.SEARCH_BACKEND = "local"
    assert health.readiness()["checks"]["index_storage"] == "fail"
