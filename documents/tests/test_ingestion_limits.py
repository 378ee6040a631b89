"""One file cannot stop ingestion: reading runs in a child process within a time and a memory
limit, a live reading keeps its heartbeat, and an attempt given up on writes nothing more."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.db.models import F
from django.utils import timezone, translation

from conftest import free_port, stop_process, subprocess_env, wait_for_port
from documents import attempt, extraction, ingestion, services, tasks
from documents.models import Chunk, Document, DocumentStatus, KnowledgeBase
from documents.reasons import translate_reason
from documents.tests import hostile
from documents.tests.helpers import DOCS, upload_bytes, upload_path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_encoder")]


@pytest.fixture
def kb(alice: Any) -> KnowledgeBase:
    return services.knowledge_base_create(owner=alice, name="Inbox")


def _wait(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a live process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _readers_of(parent: int) -> list[int]:
    """Reading processes (``python -m documents.extraction``) whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        stat = _stat(int(entry.name))
        if stat and stat[0] != "Z" and stat[1] == parent and b"documents.extraction" in cmdline:
            found.append(int(entry.name))
    return found


def _status(document: Document) -> str:
    return str(Document.objects.values_list("status", flat=True).get(pk=document.pk))


def _kill_readers() -> None:
    for pid in _readers_of(os.getpid()):
        os.kill(pid, signal.SIGKILL)


# --- limits -----------------------------------------------------------------------------------


def test_a_pdf_that_keeps_the_reader_busy_fails_at_the_time_limit(kb, settings):
    settings.INGEST_PARSE_TIMEOUT = 3
    document = upload_bytes(kb, "report.pdf", hostile.slow_pdf())
    assert document.status == DocumentStatus.FAILED
    assert document.failure_reason == (
        "This file took longer than 3 seconds to read; it may be damaged or built to overload "
        "readers, so it was not indexed."
    )
    assert not Chunk.objects.filter(document=document).exists()
    assert _readers_of(os.getpid()) == []
    with translation.override("ru"):
        assert translate_reason(document.failure_reason).startswith("Этот файл читался дольше 3 с;")


def test_a_flate_bomb_fails_at_the_memory_limit(kb, settings):
    settings.INGEST_PARSE_MEMORY_MB = 256
    data = hostile.flate_bomb_pdf(400)
    assert len(data) < 1024 * 1024  # 400 MB once inflated
    document = upload_bytes(kb, "bomb.pdf", data)
    assert document.status == DocumentStatus.FAILED
    assert document.failure_reason.startswith(
        "This file needed more than 256 MB of memory to read; it may be damaged or built to "
        "overload readers"
    )
    assert not Chunk.objects.filter(document=document).exists()
    with translation.override("ru"):
        assert "256 МБ" in translate_reason(document.failure_reason)


def test_an_oversized_docx_fails_at_the_memory_limit(kb, settings, tmp_path):
    settings.INGEST_PARSE_MEMORY_MB = 256
    path = hostile.oversized_docx(tmp_path / "contract.docx")
    assert path.stat().st_size < 3 * 1024 * 1024
    document = upload_path(kb, path)
    assert document.file_type == "docx"
    assert document.status == DocumentStatus.FAILED
    assert "needed more than 256 MB of memory to read" in document.failure_reason
    assert not Chunk.objects.filter(document=document).exists()


def test_the_limit_reasons_name_the_limit_and_read_in_russian():
    assert ingestion.timeout_reason(300) == (
        "This file took longer than 5 minutes to read; it may be damaged or built to overload "
        "readers, so it was not indexed."
    )
    reasons = [
        ingestion.timeout_reason(300),
        ingestion.timeout_reason(45),
        ingestion.PARSE_MEMORY % {"limit": 1024},
        ingestion.PARSE_KILLED,
    ]
    with translation.override("ru"):
        russian = [translate_reason(reason) for reason in reasons]
    assert russian[0].startswith("Этот файл читался дольше 5 мин;")
    assert russian[1].startswith("Этот файл читался дольше 45 с;")
    assert "1024 МБ" in russian[2]
    assert all(text != reason for text, reason in zip(russian, reasons, strict=True))


@pytest.mark.parametrize(
    "name", ["pdf/ru/synopsis.pdf", "docx/ru/onlyoffice_sample_ru.docx", "txt/ru_cp1251.txt"]
)
def test_ordinary_files_are_read_by_a_child_process_and_indexed(kb, monkeypatch, name):
    pids: list[int | None] = []
    real_enter = extraction.Extraction.__enter__

    def enter(self: extraction.Extraction) -> extraction.Extraction:
        entered = real_enter(self)
        pids.append(self.pid)
        return entered

    monkeypatch.setattr(extraction.Extraction, "__enter__", enter)
    document = upload_path(kb, DOCS / name)
    assert document.status == DocumentStatus.INDEXED, document.failure_reason
    assert document.chunk_count == Chunk.objects.filter(document=document).count() > 0
    assert len(pids) == 1 and pids[0] is not None and pids[0] != os.getpid()


def test_the_reading_process_loads_no_django_torch_or_faiss():
    """The child runs ``python -m documents.extraction``: these are all the modules it loads
    beyond the interpreter's own, so its memory limit is about reading."""
    code = "import sys, documents.extraction; print(sorted({m.split('.')[0] for m in sys.modules}))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
    assert {"pdfminer", "lxml"} <= loaded
    heavy = {"django", "torch", "faiss", "numpy", "sentence_transformers", "celery", "channels"}
    assert loaded & heavy == set()


# --- attempts and the sweeper -----------------------------------------------------------------


def test_a_stale_attempts_writes_are_dropped(kb):
    document = upload_bytes(kb, "a.txt", b"Some text for the index.", queue=False)
    first = attempt.claim(document.pk)
    assert first is not None
    # The sweeper took the first attempt for dead; a second one claims the document.
    Document.objects.filter(pk=document.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    second = attempt.claim(document.pk)
    assert second is not None and second.ingest_run == first.ingest_run + 1
    assert ingestion.mark_failed(first, "the first attempt failed") is False
    with pytest.raises(attempt.Superseded):
        attempt.Progress(attempt.Attempt(first))(DocumentStatus.EMBEDDING, 50)
    document.refresh_from_db()
    assert (document.status, document.progress, document.failure_reason) == (
        DocumentStatus.EXTRACTING,
        0,
        "",
    )


def test_a_reading_whose_document_was_taken_over_stops_and_writes_nothing(kb, settings):
    settings.INGEST_STALE_SECONDS = 2  # a heartbeat every 0.4 s
    settings.INGEST_PARSE_TIMEOUT = 120
    document = upload_bytes(kb, "report.pdf", hostile.slow_pdf(), queue=False)
    outcome: list[str] = []

    def ingest() -> None:
        try:
            outcome.append(ingestion.document_ingest(document.pk))
        finally:
            connections.close_all()

    worker = threading.Thread(target=ingest)
    worker.start()
    try:
        _wait(lambda: _readers_of(os.getpid()), 60, "the reading process")
        # Another attempt takes the document over (a claim after the sweeper, or a retry).
        Document.objects.filter(pk=document.pk).update(
            ingest_run=F("ingest_run") + 1, heartbeat_at=timezone.now()
        )
        worker.join(timeout=60)
        assert not worker.is_alive()
    finally:
        _kill_readers()
        worker.join(timeout=30)
    assert outcome == ["superseded"]
    assert _readers_of(os.getpid()) == []
    document.refresh_from_db()
    assert (document.status, document.failure_reason) == (DocumentStatus.EXTRACTING, "")
    assert not Chunk.objects.filter(document=document).exists()


def test_while_one_document_is_stuck_another_users_text_is_indexed(
    alice, bob, settings, monkeypatch
):
    from core import background

    settings.BACKGROUND_TASKS = "thread"
    settings.BACKGROUND_THREADS = 2
    settings.INGEST_STALE_SECONDS = 2  # a heartbeat every 0.4 s
    settings.INGEST_PARSE_TIMEOUT = 120
    monkeypatch.setattr(background, "_pool", None)  # a pool of this test's size
    alice_kb = services.knowledge_base_create(owner=alice, name="Alice")
    bob_kb = services.knowledge_base_create(owner=bob, name="Bob")
    stuck = upload_bytes(alice_kb, "report.pdf", hostile.slow_pdf())
    try:
        _wait(lambda: _status(stuck) == DocumentStatus.EXTRACTING, 60, "the PDF to be read")
        # The sweeper runs past the stale period while the reading goes on: the heartbeat
        # keeps the document fresh, so it is not queued again (a second reading of it would
        # take the pool's other thread).
        deadline = time.monotonic() + 3 * settings.INGEST_STALE_SECONDS
        while time.monotonic() < deadline:
            assert tasks.sweep_stale() == []
            time.sleep(0.3)
        text = upload_bytes(bob_kb, "notes.txt", b"Meeting notes: the budget grows next year.")
        _wait(lambda: _status(text) == DocumentStatus.INDEXED, 60, "the other user's text")
        stuck.refresh_from_db()
        assert (stuck.status, stuck.attempts) == (DocumentStatus.EXTRACTING, 1)
        assert len(_readers_of(os.getpid())) == 1
    finally:
        # End the stuck reading as a retry would: the document goes to another attempt.
        Document.objects.filter(pk=stuck.pk).update(ingest_run=F("ingest_run") + 1)
        try:
            _wait(lambda: not _readers_of(os.getpid()), 30, "the stuck reading to stop")
        finally:
            _kill_readers()
            if background._pool is not None:
                background._pool.shutdown(wait=True)


@pytest.mark.slow
def test_sigterm_stops_the_web_process_at_once_and_ends_its_reading(kb, tmp_path):
    document = upload_bytes(kb, "report.pdf", hostile.slow_pdf(), queue=False)
    # Queued long ago: the web process's sweeper hands it to the thread pool at once.
    Document.objects.filter(pk=document.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    env = subprocess_env(
        BACKGROUND_TASKS="thread",
        INGEST_STALE_SECONDS="2",
        INGEST_SWEEP_SECONDS="1",
        INGEST_PARSE_TIMEOUT="300",
        HF_HUB_OFFLINE="1",
    )
    port = free_port()
    with (tmp_path / "daphne.log").open("w") as log:
        proc = subprocess.Popen(
            [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "raggen.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    readers: list[int] = []
    survivors: list[int] = []
    try:
        wait_for_port(port, timeout=60, proc=proc)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30).read()
        _wait(lambda: _status(document) == DocumentStatus.EXTRACTING, 60, "the reading to start")
        deadline = time.monotonic() + 10
        while not readers and time.monotonic() < deadline:
            readers = _readers_of(proc.pid)
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)  # not held up by the reading (it would take minutes)
    finally:
        stop_process(proc)
        survivors = [pid for pid in readers if _alive(pid)]
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
    assert readers and survivors == []
    document.refresh_from_db()
    # Interrupted, not failed: queued again, the attempt not counted.
    assert (document.status, document.attempts, document.failure_reason) == (
        DocumentStatus.QUEUED,
        0,
        "",
    )
