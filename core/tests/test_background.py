"""Periodic jobs: registered by the app that owns them, started by the process that runs them."""

from __future__ import annotations

import threading

import pytest

from core import background


@pytest.fixture
def registry(monkeypatch):
    """An empty registry for the test, so nothing it starts touches the real jobs."""
    monkeypatch.setattr(background, "_periodic", {})
    monkeypatch.setattr(background, "_periodic_started", {})
    return background


def test_start_all_starts_each_registered_job_once_per_process(registry):
    ran = threading.Event()
    registry.periodic_register(name="probe", job=ran.set, interval=lambda: 0.2)

    first = registry.periodic_start_all()
    again = registry.periodic_start_all()

    assert [thread.name for thread in first] == ["raggen-probe"]
    assert again == []
    assert ran.wait(timeout=10)


def test_run_now_runs_each_job_once_in_the_caller_before_starting_it(registry):
    calls: list[str] = []
    registry.periodic_register(
        name="catch-up",
        job=lambda: calls.append(threading.current_thread().name),
        interval=lambda: 3600,
    )

    started = registry.periodic_start_all(run_now=True)

    assert calls == [threading.current_thread().name]
    assert [thread.name for thread in started] == ["raggen-catch-up"]


def test_a_failing_first_run_is_logged_and_the_job_still_starts(registry, caplog):
    def boom() -> None:
        raise RuntimeError("down")

    registry.periodic_register(name="flaky", job=boom, interval=lambda: 3600)

    started = registry.periodic_start_all(run_now=True)

    assert [thread.name for thread in started] == ["raggen-flaky"]
    assert "periodic job flaky failed" in caplog.text
