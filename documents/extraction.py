"""Reading a stored file, in a child process held within limits.

The readers and the chunker run in a child process, so one hostile file cannot take the
process that serves everyone else: a PDF that keeps pdfminer busy for an hour, a stream that
inflates to gigabytes, a DOCX whose XML tree needs 3 GB. The child:

- is a fresh interpreter running ``python -m documents.extraction`` (never a fork of the
  threaded web or worker process), which imports this module and nothing else of ours: it
  holds no database connection, no thread, no Django, torch or faiss (``multiprocessing``'s
  ``spawn`` and ``forkserver`` would run the parent's main script, daphne's or celery's, again
  in every child; ``fork`` would copy the locks of the parent's other threads: see
  docs/INGESTION.md);
- sets its own limits before it reads a byte: address space (``RLIMIT_AS``, so an allocation
  past ``memory_mb`` raises ``MemoryError``) and CPU time (``RLIMIT_CPU``, a backstop that ends
  it even if nobody is left to kill it);
- streams plain data back through a pipe: the declared page count, then batches of
  :class:`~documents.chunking.ChunkDraft` with the number of pages read so far, then ``done``.

The parent (:class:`Extraction`) counts the wall-clock time it spends waiting for the child;
past ``timeout`` it kills the child. Time the parent spends on its own (embedding the previous
batch) is not counted: the limit is on reading. A child that hits a limit, dies, or is stopped
raises a distinct error (:class:`ParseTimeout`, :class:`ParseMemoryExceeded`,
:class:`ParseKilled`, :class:`ParseCrashed`, :class:`ExtractionCancelled`); a file the
readers refuse raises ``UnreadableDocument`` as before.

Ground floor: no Django, no app imports beyond the readers and the chunker (the child imports
this module and nothing else of ours).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

from documents.chunking import ChunkDraft, ChunkingOptions, iter_chunks
from documents.readers import Page, UnreadableDocument, count_pages, iter_document

logger = logging.getLogger(__name__)

#: Chunk drafts sent per message.
BATCH = 64
#: How often a waiting parent looks up from the pipe to check whether it was cancelled.
_TICK = 0.25
#: Exit code of a child whose ``MemoryError`` left no room to report it through the pipe.
_EXIT_MEMORY = 3
#: CPU seconds past the wall-clock limit before the kernel's ``SIGKILL`` (after ``SIGXCPU``).
_CPU_GRACE = 5


class ExtractionError(Exception):
    """Reading stopped for a reason other than the file being unreadable."""


class ParseTimeout(ExtractionError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"reading took longer than {seconds:g} s")
        self.seconds = seconds


class ParseMemoryExceeded(ExtractionError):
    def __init__(self, limit_mb: int) -> None:
        super().__init__(f"reading needed more than {limit_mb} MB")
        self.limit_mb = limit_mb


class ParseKilled(ExtractionError):
    """The child died without a word: killed by a signal (the kernel's OOM killer, an
    operator) or crashed in native code."""

    def __init__(self, exitcode: int | None) -> None:
        how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else exitcode
        super().__init__(f"the reader process ended without an answer ({how})")
        self.exitcode = exitcode


class ParseCrashed(ExtractionError):
    """An unexpected exception in a reader (a bug, not a limit); ``detail`` names it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ExtractionCancelled(ExtractionError):
    """Stopped from outside: the process is shutting down, or the caller gave up."""


@dataclass(frozen=True)
class Job:
    """What the child reads, and its limits."""

    path: str
    file_type: str
    options: ChunkingOptions
    max_pages: int | None
    memory_mb: int
    cpu_seconds: int


@dataclass(frozen=True)
class Batch:
    """Chunk drafts in document order, and how many pages had been read when they were cut."""

    drafts: tuple[ChunkDraft, ...]
    pages_done: int


def _job_to_argument(job: Job) -> str:
    return json.dumps({**asdict(job), "options": asdict(job.options)})


def _job_from_argument(argument: str) -> Job:
    data = json.loads(argument)
    return Job(**{**data, "options": ChunkingOptions(**data["options"])})


# --- the parent side --------------------------------------------------------------------------

#: The folder that holds the ``documents`` package: the child's working directory.
_ROOT = Path(__file__).resolve().parent.parent

_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
_stopping = threading.Event()
_exit_hook_lock = threading.Lock()
_exit_hook_installed = False


def stop_all() -> None:
    """Kill every reading child of this process and refuse new ones: the process is shutting
    down. Callers waiting on a child get :class:`ExtractionCancelled` at once."""
    _stopping.set()
    with _live_lock:
        children = list(_live)
    for child in children:
        _kill(child)


def _install_exit_hook() -> None:
    """Run :func:`stop_all` at interpreter exit, before the task threads are joined.

    Without it a task thread waiting on a child holds the exit up to the child's limit:
    ``concurrent.futures`` joins its threads in a ``threading`` exit hook (which runs before
    ``atexit``). Those hooks run last-registered first, so ours, registered once a task thread
    exists, runs before that join. ``threading._register_atexit`` is the hook
    ``concurrent.futures`` itself uses.
    """
    global _exit_hook_installed
    with _exit_hook_lock:
        if _exit_hook_installed:
            return
        _exit_hook_installed = True
        register: Callable[[Callable[[], None]], None] | None = getattr(
            threading, "_register_atexit", None
        )
        if register is None:
            return
        try:
            register(stop_all)
        except RuntimeError:  # the interpreter is already shutting down
            _stopping.set()


def _kill(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        with contextlib.suppress(OSError):  # it ended meanwhile
            child.kill()


class Extraction:
    """One file read by a child process; a context manager (the child never outlives it).

    Entering starts the child and waits for the declared page count (``page_count``);
    :meth:`batches` yields the chunk drafts. ``timeout`` bounds the wall-clock time spent
    waiting for the child in all, ``memory_mb`` its address space. ``cancelled`` is polled
    while waiting (a few times a second); once it returns true, the child is killed and
    :class:`ExtractionCancelled` raised.
    """

    def __init__(
        self,
        path: Path,
        file_type: str,
        *,
        options: ChunkingOptions,
        max_pages: int | None,
        timeout: float,
        memory_mb: int,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self.job = Job(
            path=str(Path(path).resolve()),
            file_type=file_type,
            options=options,
            max_pages=max_pages,
            memory_mb=memory_mb,
            cpu_seconds=max(1, int(timeout + 0.999)),
        )
        self.timeout = timeout
        self.cancelled = cancelled or (lambda: False)
        self.waited = 0.0
        self.page_count: int | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    def __enter__(self) -> Extraction:
        try:
            self._start()
            message = self._receive()
            if message[0] != "pages":
                raise ParseCrashed(f"unexpected first message {message[0]!r}")
            self.page_count = message[1]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (tests look for it)."""
        return self._child.pid if self._child is not None else None

    def batches(self) -> Iterator[Batch]:
        """Chunk drafts as the child cuts them, until the whole file is read."""
        while True:
            message = self._receive()
            if message[0] == "done":
                return
            if message[0] != "chunks":
                raise ParseCrashed(f"unexpected message {message[0]!r}")
            yield Batch(tuple(message[2]), message[1])

    def close(self) -> None:
        """Kill the child if it still runs, reap it and release the pipe."""
        child, self._child = self._child, None
        if child is not None:
            _kill(child)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                logger.error("reader process %s did not end after SIGKILL", child.pid)
            with _live_lock:
                _live.discard(child)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _start(self) -> None:
        _install_exit_hook()
        read_fd, write_fd = os.pipe()
        self._conn = Connection(read_fd, writable=False)
        try:
            with _live_lock:
                if _stopping.is_set():
                    raise ExtractionCancelled("the process is shutting down")
                self._child = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        __name__,
                        str(write_fd),
                        _job_to_argument(self.job),
                    ],
                    cwd=_ROOT,
                    stdin=subprocess.DEVNULL,
                    pass_fds=(write_fd,),
                )
                _live.add(self._child)
        finally:
            os.close(write_fd)

    def _receive(self) -> tuple[Any, ...]:
        """The child's next message; raises for the end of its work other than ``done``."""
        assert self._conn is not None
        while True:
            if _stopping.is_set() or self.cancelled():
                raise ExtractionCancelled("reading was stopped")
            remaining = self.timeout - self.waited
            if remaining <= 0:
                raise ParseTimeout(self.timeout)
            started = time.monotonic()
            try:
                ready = self._conn.poll(min(remaining, _TICK))
            finally:
                self.waited += time.monotonic() - started
            if not ready:
                continue
            try:
                message: tuple[Any, ...] = self._conn.recv()
            except (EOFError, OSError):
                raise self._ended() from None
            kind = message[0]
            if kind == "unreadable":
                raise UnreadableDocument(message[1])
            if kind == "memory":
                raise ParseMemoryExceeded(self.job.memory_mb)
            if kind == "error":
                raise ParseCrashed(message[1])
            return message

    def _ended(self) -> ExtractionError:
        """The pipe closed before ``done``: why did the child end?"""
        exitcode = None
        if self._child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                exitcode = self._child.wait(timeout=10)
        if _stopping.is_set() or self.cancelled():
            return ExtractionCancelled("reading was stopped")
        if exitcode == -signal.SIGXCPU:
            return ParseTimeout(self.timeout)
        if exitcode == _EXIT_MEMORY:
            return ParseMemoryExceeded(self.job.memory_mb)
        return ParseKilled(exitcode)


# --- the child side ---------------------------------------------------------------------------


def _child_main(fd: int, job: Job) -> None:
    """The child: limits first, then read and stream through ``fd``."""
    _limit(job)
    conn = Connection(fd, readable=False)
    message: tuple[Any, ...] | None = None
    try:
        _stream(conn, job)
    except UnreadableDocument as exc:
        message = ("unreadable", exc.reason)
    except MemoryError:
        message = ("memory",)
    except BrokenPipeError:
        os._exit(0)  # the parent stopped listening
    except Exception as exc:
        message = ("error", f"{type(exc).__name__}: {exc}"[:500])
    # Sent outside the handler, once the traceback and the memory its frames hold are freed.
    if message is not None:
        try:
            conn.send(message)
        except MemoryError:
            os._exit(_EXIT_MEMORY)
        except OSError:
            os._exit(0)
    conn.close()


def _limit(job: Job) -> None:
    memory = job.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (job.cpu_seconds, job.cpu_seconds + _CPU_GRACE))


def _stream(conn: Connection, job: Job) -> None:
    path = Path(job.path)
    conn.send(("pages", count_pages(path, job.file_type)))
    pages_read = 0

    def pages() -> Iterator[Page]:
        nonlocal pages_read
        for page in iter_document(path, job.file_type, max_pages=job.max_pages):
            pages_read += 1
            yield page

    batch: list[ChunkDraft] = []
    for draft in iter_chunks(pages(), job.options):
        batch.append(draft)
        if len(batch) >= BATCH:
            conn.send(("chunks", pages_read, batch))
            batch = []
    if batch:
        conn.send(("chunks", pages_read, batch))
    conn.send(("done", pages_read))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in a terminal is for the parent
    _child_main(int(sys.argv[1]), _job_from_argument(sys.argv[2]))
