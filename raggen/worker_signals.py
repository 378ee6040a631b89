"""Task metrics in a Celery worker process (the web process counts its own in ``background``)."""

from __future__ import annotations

import time
from typing import Any

from celery.signals import task_postrun, task_prerun

from core.metrics import TASK_DURATION, TASKS

_started: dict[str, float] = {}


@task_prerun.connect
def _on_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


@task_postrun.connect
def _on_postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    if not task_id or task is None:
        return
    started = _started.pop(task_id, None)
    TASKS.labels(task.name, "success" if state == "SUCCESS" else "failure").inc()
    if started is not None:
        TASK_DURATION.labels(task.name).observe(time.perf_counter() - started)
