"""The commands and health checks written in docker-compose.yml and deploy/kubernetes, run for
real: the worker's command line starts a Celery worker that its own health check finds (and a
check naming another worker does not), and the web health checks get 200 from the real server with
each file's ALLOWED_HOSTS."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conftest import running_daphne, stop_process, subprocess_env

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MANIFESTS = ROOT / "deploy" / "kubernetes"


def _interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's interpolation of the forms the file uses: ${NAME:-default}, ${NAME:?message},
    ${NAME} and $$ for a literal $."""

    def value(match: re.Match[str]) -> str:
        name, operator, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        found = variables.get(name, "")
        return found if found or operator != ":-" else rest

    text = re.sub(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)(:-|:\?)?([^}]*)\}", value, text)
    return text.replace("$$", "$")


def _compose_service(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    service: dict[str, Any] = data["services"][name]
    return service


def _k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    objects = {}
    for path in MANIFESTS.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and "metadata" in doc:
                objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def _k8s_container(name: str) -> dict[str, Any]:
    container: dict[str, Any] = _k8s_objects()[("Deployment", f"raggen-{name}")]["spec"][
        "template"
    ]["spec"]["containers"][0]
    return container


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _until_ok(check: Callable[[], subprocess.CompletedProcess[str]]) -> None:
    """Runs ``check`` until it exits 0 (a worker takes a moment to join); fails with its output
    after two minutes."""
    deadline = time.monotonic() + 120
    while True:
        result = check()
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"health check never passed: {result.stdout}\n{result.stderr}")
        time.sleep(1)


@pytest.fixture
def worker_env(redis_server: str, transactional_db: None) -> dict[str, str]:
    env = subprocess_env(REDIS_URL=redis_server, BACKGROUND_TASKS="celery")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[[list[str], dict[str, str]], None]]:
    """Starts a worker by a file's command line and waits until it says it is ready (a ping
    sent before it listens would wait out the check's whole timeout)."""
    processes: list[subprocess.Popen[Any]] = []

    def start(command: list[str], env: dict[str, str]) -> None:
        path = tmp_path / f"worker-{len(processes)}.log"
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=path.open("w"), stderr=subprocess.STDOUT
        )
        processes.append(proc)
        deadline = time.monotonic() + 120
        while " ready." not in path.read_text(encoding="utf-8", errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not start: {path.read_text()}")
            time.sleep(0.2)

    yield start
    for proc in processes:
        stop_process(proc)


@pytest.mark.redis
@pytest.mark.celery
def test_compose_worker_answers_its_own_health_check(worker_env, started):
    service = _compose_service("worker")
    variables = {"WORKER_CONCURRENCY": "1"}
    command = [_interpolate(part, variables) for part in service["command"]]
    # Docker sets HOSTNAME to the container's host name, which Celery's %h reads.
    env = {**worker_env, "HOSTNAME": socket.gethostname()}
    started(command, env)
    kind, check = service["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    _until_ok(lambda: _run(["sh", "-c", _interpolate(check, variables)], env))


@pytest.mark.redis
@pytest.mark.celery
def test_kubernetes_worker_liveness_probe_pings_that_worker_only(worker_env, started):
    container = _k8s_container("worker")
    env = {**worker_env, "HOSTNAME": "raggen-worker-7d9f-abcde", "WORKER_CONCURRENCY": "1"}
    started(container["command"], env)
    probe = container["livenessProbe"]["exec"]["command"]
    _until_ok(lambda: _run(probe, env))
    # The same probe in a pod whose worker is gone: no answer, so the pod would be restarted.
    other = _run(probe, {**env, "HOSTNAME": "raggen-worker-7d9f-gone0"})
    assert other.returncode != 0


@pytest.fixture
def web_env(redis_server: str, transactional_db: None) -> dict[str, str]:
    return subprocess_env(REDIS_URL=redis_server)


@pytest.mark.redis
def test_compose_web_health_check_passes_on_the_real_server(web_env, tmp_path):
    service = _compose_service("web")
    # No ALLOWED_HOSTS in .env: the file's own list (this machine's names).
    env = {**web_env, "ALLOWED_HOSTS": _interpolate(service["environment"]["ALLOWED_HOSTS"], {})}
    with running_daphne(env, tmp_path / "daphne.log") as port:
        kind, *check = service["healthcheck"]["test"]
        assert kind == "CMD" and "http://127.0.0.1:8000/readyz" in check[-1]
        check[-1] = check[-1].replace(":8000/", f":{port}/")
        check[0] = sys.executable if check[0] == "python" else check[0]
        result = _run(check, env)
        assert result.returncode == 0, result.stderr
        # And it fails when the server is not ready (Redis named but unreachable): a check that
        # passes whatever the answer would be worth nothing.
    broken = {**env, "REDIS_URL": "redis://127.0.0.1:1/0"}
    with running_daphne(broken, tmp_path / "daphne-broken.log") as port:
        check[-1] = re.sub(r":\d+/readyz", f":{port}/readyz", check[-1])
        assert _run(check, broken).returncode != 0


@pytest.mark.redis
def test_kubernetes_probes_pass_on_the_real_server(web_env, tmp_path):
    config = _k8s_objects()[("ConfigMap", "raggen-config")]["data"]
    env = {**web_env, "ALLOWED_HOSTS": config["ALLOWED_HOSTS"]}
    web = _k8s_container("web")
    with running_daphne(env, tmp_path / "daphne.log") as port:
        for name in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = web[name]["httpGet"]
            headers = {h["name"]: h["value"] for h in probe["httpHeaders"]}
            response = httpx.get(
                f"http://127.0.0.1:{port}{probe['path']}", headers=headers, timeout=30
            )
            assert response.status_code == 200, (name, response.text)
            assert response.json()["status"] == "ok"
        # Without the header the kubelet would send the pod's address: refused.
        refused = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert refused.status_code == 400
