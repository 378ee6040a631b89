"""A worker killed mid-document, with a real Celery worker process and real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import start_celery_worker, subprocess_env
from documents import services
from documents.models import Chunk, Document, DocumentStatus
from documents.retrieval import index_stats, search

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.redis, pytest.mark.celery, pytest.mark.slow]


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _long_text(paragraphs: int) -> bytes:
    words = [
        "supplier",
        "delivers",
        "goods",
        "warranty",
        "invoice",
        "payment",
        "contract",
        "clause",
        "term",
    ]
    lines = []
    for i in range(paragraphs):
        body = " ".join(words[(i + j) % len(words)] for j in range(60))
        lines.append(f"Paragraph {i}. {body} (item {i * 7919 % 10007}).")
    return "\n\n".join(lines).encode()


def test_a_worker_killed_mid_document_leaves_it_retried_and_whole(
    redis_server, transactional_db, alice, tmp_path
):
    kb = services.knowledge_base_create(owner=alice, name="Big", encoder="local")
    upload = services.document_upload(
        knowledge_base=kb, user=alice, name="big.txt", chunks=[_long_text(800)], queue=False
    )
    document = upload.document
    env = subprocess_env(
        REDIS_URL=redis_server,
        INGEST_STALE_SECONDS="3",
        INGEST_SWEEP_SECONDS="1",
        CELERY_VISIBILITY_TIMEOUT="10",
        HF_HUB_OFFLINE="1",
    )
    first = start_celery_worker(env, tmp_path / "worker1.log")
    second = None
    try:
        sent = subprocess.run(
            [
                str(BIN / "celery"),
                "-A",
                "raggen",
                "call",
                "documents.document_ingest",
                "--args",
                f"[{document.pk}]",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        _wait(
            lambda: Chunk.objects.filter(document=document).count() >= 64,
            240,
            "the first worker to embed some chunks",
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        document.refresh_from_db()
        assert document.status in (DocumentStatus.CHUNKING, DocumentStatus.EMBEDDING)
        partial = Chunk.objects.filter(document=document).count()
        # Half-written chunks exist, but search does not show them.
        assert search(knowledge_bases=[kb], query="supplier warranty", mode="keyword").hits == []

        second = start_celery_worker(env, tmp_path / "worker2.log")
        _wait(
            lambda: Document.objects.get(pk=document.pk).status == DocumentStatus.INDEXED,
            300,
            "the second worker to finish the document",
        )
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
    document.refresh_from_db()
    assert document.attempts >= 2
    ordinals = list(Chunk.objects.filter(document=document).values_list("ordinal", flat=True))
    assert ordinals == list(range(len(ordinals)))
    assert len(ordinals) == document.chunk_count > partial
    assert index_stats(knowledge_base=kb).count == document.chunk_count
    hits = search(knowledge_bases=[kb], query="Paragraph 799", mode="keyword", top_k=3).hits
    assert hits and hits[0].document_id == document.pk
