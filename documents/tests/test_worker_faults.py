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

from conftest import start_celery_worker, stop_process, subprocess_env
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


def _send_ingest(env: dict[str, str], document_id: int) -> None:
    sent = subprocess.run(
        [str(BIN / "celery"), "-A", "raggen", "call", "documents.document_ingest",
         "--args", f"[{document_id}]"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr


def test_two_workers_given_one_document_index_it_once(
    redis_server, transactional_db, alice, tmp_path
):
    """The same document's task delivered twice (a redelivery, a second click, a sweeper that
    ran early) to two worker processes while the first is mid-document: the second finds the
    document held by a live attempt and leaves it; the document is indexed once, whole."""
    kb = services.knowledge_base_create(owner=alice, name="Twice", encoder="local")
    upload = services.document_upload(
        knowledge_base=kb, user=alice, name="twice.txt", chunks=[_long_text(400)], queue=False
    )
    document = upload.document
    env = subprocess_env(REDIS_URL=redis_server, INGEST_STALE_SECONDS="60", HF_HUB_OFFLINE="1")
    first = start_celery_worker(env, tmp_path / "worker1.log")
    second = None
    try:
        _send_ingest(env, document.pk)
        _wait(
            lambda: Chunk.objects.filter(document=document).exists(),
            240,
            "the first worker to start on the document",
        )
        second = start_celery_worker(env, tmp_path / "worker2.log")
        _send_ingest(env, document.pk)
        _wait(
            lambda: (
                "document_ingest" in (tmp_path / "worker2.log").read_text()
                and "succeeded" in (tmp_path / "worker2.log").read_text()
            ),
            240,
            "the second worker to take the task and leave the document",
        )
        _wait(
            lambda: Document.objects.get(pk=document.pk).status == DocumentStatus.INDEXED,
            300,
            "the first worker to finish the document",
        )
    finally:
        for proc in (first, second):
            if proc is not None:
                stop_process(proc)
    document.refresh_from_db()
    assert document.attempts == 1  # the second delivery never claimed it
    ordinals = list(Chunk.objects.filter(document=document).values_list("ordinal", flat=True))
    assert ordinals == list(range(len(ordinals))) and ordinals
    assert len(ordinals) == document.chunk_count
    assert index_stats(knowledge_base=kb).count == document.chunk_count
    hits = search(knowledge_bases=[kb], query="Paragraph 399", mode="keyword", top_k=10).hits
    assert hits and hits[0].document_id == document.pk
    assert len({h.chunk_id for h in hits}) == len(hits)
