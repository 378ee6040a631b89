"""Runs a Celery task in the background, wherever the deployment says.

- ``celery``: sent to the broker; a ``make worker`` process runs it.
- ``thread``: the embedded default. The same task runs on a small thread pool inside the web
  process, so an upload returns at once and its progress still streams.
- ``eager``: runs at once, in the caller's thread (tests).

Periodic jobs (the sweeper of abandoned ingestion runs) are registered by the app that owns them
(``periodic_register`` from its ``AppConfig.ready``) and started by the process that runs them
(``periodic_start_all`` from ``raggen.asgi`` or the Celery worker), so the roof never names them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from celery import Task
from celery.result import AsyncResult
from django.conf import settings
from django.db import close_old_connections, transaction

from core.metrics import TASK_DURATION, TASKS

logger = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.BACKGROUND_THREADS, thread_name_prefix="raggen-task"
            )
        return _pool


def _run_locally(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    close_old_connections()
    started = time.perf_counter()
    outcome = "success"
    try:
        result = task.apply(args=args, kwargs=kwargs)
        if result.failed():
            outcome = "failure"
            logger.error("task %s failed: %s", task.name, result.result)
        return result.result
    finally:
        TASKS.labels(task.name, outcome).inc()
        TASK_DURATION.labels(task.name).observe(time.perf_counter() - started)
        close_old_connections()


def enqueue(
    task: Task[Any, Any], *args: Any, **kwargs: Any
) -> AsyncResult[Any] | Future[Any] | None:
    """Run ``task(*args, **kwargs)`` in the background as configured by ``BACKGROUND_TASKS``.

    Returns Celery's ``AsyncResult`` in ``celery`` mode, the local future in ``thread`` mode, and
    ``None`` in ``eager`` mode (the task has run). Arguments must be JSON-serialisable.
    """
    mode = settings.BACKGROUND_TASKS
    if mode == "celery":
        return task.apply_async(args=args, kwargs=kwargs)
    if mode == "eager":
        _run_locally(task, args, kwargs)
        return None
    return _get_pool().submit(_run_locally, task, args, kwargs)


def enqueue_on_commit(task: Task[Any, Any], *args: Any, **kwargs: Any) -> None:
    """Like :func:`enqueue`, once the current transaction commits (never before its rows exist)."""
    transaction.on_commit(lambda: enqueue(task, *args, **kwargs))


def start_periodic(name: str, job: Callable[[], object], interval: float) -> threading.Thread:
    """Run ``job`` every ``interval`` seconds on a daemon thread of this process (the sweeper of
    abandoned ingestion runs so in the web process and in each worker). A failing run is logged;
    the next one still comes."""

    def loop() -> None:
        while True:
            time.sleep(interval)
            try:
                close_old_connections()
                job()
            except Exception:
                logger.exception("periodic job %s failed", name)
            finally:
                close_old_connections()

    thread = threading.Thread(target=loop, name=f"raggen-{name}", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    job: Callable[[], object]
    #: Seconds between runs, read when the job starts (so settings overrides apply).
    interval: Callable[[], float]


_periodic: dict[str, PeriodicJob] = {}
_periodic_started: dict[str, threading.Thread] = {}
_periodic_lock = threading.Lock()


def periodic_register(
    *, name: str, job: Callable[[], object], interval: Callable[[], float]
) -> None:
    """Declare ``job`` to run every ``interval()`` seconds in the processes that start periodic
    jobs. Called from an ``AppConfig.ready``; registering a name again replaces its job."""
    with _periodic_lock:
        _periodic[name] = PeriodicJob(name=name, job=job, interval=interval)


def periodic_jobs() -> list[PeriodicJob]:
    """The registered jobs, in registration order."""
    with _periodic_lock:
        return list(_periodic.values())


def periodic_start_all(*, run_now: bool = False) -> list[threading.Thread]:
    """Start every registered job not yet started in this process, each on its own daemon
    thread (see :func:`start_periodic`), and return the threads started. ``run_now``: run each
    job once first, in the caller's thread (a Celery worker catching up when it comes up); a
    failing first run is logged and the job is still started."""
    started: list[threading.Thread] = []
    for job in periodic_jobs():
        with _periodic_lock:
            if job.name in _periodic_started:
                continue
            if run_now:
                try:
                    job.job()
                except Exception:
                    logger.exception("periodic job %s failed", job.name)
            thread = start_periodic(job.name, job.job, job.interval())
            _periodic_started[job.name] = thread
        started.append(thread)
    return started
