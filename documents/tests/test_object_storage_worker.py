"""A Celery worker process that shares nothing on disk with the web side ingests a document
from the object store: its own empty DATA_DIR, the file from S3, the rows in the database."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ObjectStore, start_celery_worker, stop_process, subprocess_env
from documents import services
from documents.models import Chunk, Document, DocumentStatus

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

_CALL = [str(BIN / "celery"), "-A", "raggen", "call", "documents.document_ingest"]

pytestmark = [pytest.mark.s3, pytest.mark.redis, pytest.mark.celery, pytest.mark.slow]


def test_a_worker_with_an_empty_data_dir_ingests_a_document_from_the_store(
    object_store: ObjectStore, redis_server, transactional_db, alice, tmp_path, settings
):
    kb = services.knowledge_base_create(owner=alice, name="Shared", encoder="local")
    document = services.document_upload(
        knowledge_base=kb,
        user=alice,
        name="terms.txt",
        chunks=[b"Payment is due within thirty days.\n\nThe warranty lasts two years."],
        queue=False,
    ).document
    worker_data = tmp_path / "worker-host"
    env = subprocess_env(
        REDIS_URL=redis_server,
        STORAGE_URL=object_store.url,
        AWS_ACCESS_KEY_ID="raggen-test",
        AWS_SECRET_ACCESS_KEY="raggen-test-secret",
        DATA_DIR=str(worker_data),
        MEDIA_ROOT=str(worker_data / "media"),
        INDEX_DIR=str(worker_data / "indexes"),
        HF_HUB_OFFLINE="1",
    )
    worker = start_celery_worker(env, tmp_path / "worker.log")
    try:
        sent = subprocess.run(
            [*_CALL, "--args", f"[{document.pk}]"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            document.refresh_from_db()
            if document.status in (DocumentStatus.INDEXED, DocumentStatus.FAILED):
                break
            time.sleep(0.2)
    finally:
        stop_process(worker)
    log = (tmp_path / "worker.log").read_text(encoding="utf-8", errors="replace")
    assert document.status == DocumentStatus.INDEXED, (document.failure_reason, log[-3000:])
    assert document.chunk_count == Chunk.objects.filter(document=document).count() > 0
    assert not (worker_data / "media").exists()  # the worker read the object, stored nothing
    assert not Path(settings.MEDIA_ROOT).exists()
    assert list(object_store.objects()) == [f"{object_store.prefix}/{document.file.name}"]
    # What the worker host keeps is its own search index with the local backend (per host);
    # with the postgres backend, nothing.
    kept = any(p.is_file() for p in (worker_data / "indexes").rglob("*"))
    assert kept == (settings.SEARCH_BACKEND == "local")
    assert Document.objects.count() == 1
