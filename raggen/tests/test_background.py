from __future__ import annotations

import io
from concurrent.futures import Future

import pytest
from django.core.management import call_command

from raggen.background import enqueue
from raggen.tasks import worker_ping_task


def test_thread_mode_runs_the_task_off_the_calling_thread(settings):
    settings.BACKGROUND_TASKS = "thread"
    future = enqueue(worker_ping_task, "n1")
    assert isinstance(future, Future)
    assert future.result(timeout=10)["nonce"] == "n1"


@pytest.mark.django_db
def test_eager_mode_runs_at_once_and_counts_the_task(settings, client):
    settings.BACKGROUND_TASKS = "eager"
    assert enqueue(worker_ping_task, "n2") is None
    metrics = client.get("/metrics").content.decode()
    assert 'raggen_tasks_total{outcome="success",task="raggen.worker_ping"}' in metrics


@pytest.mark.django_db
def test_check_worker_reports_the_in_process_pool(settings):
    settings.BACKGROUND_TASKS = "thread"
    out = io.StringIO()
    call_command("check_worker", stdout=out)
    assert out.getvalue().startswith("thread worker answered")
