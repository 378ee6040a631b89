"""Fixtures shared by every app's tests: users, real redis-server, subprocess environments."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from django.db import connection

from documents.retrieval import use_encoder
from embeddings.encoder import FakeEncoder
from raggen.storage_url import default_storage_from_url

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_files(settings: Any, tmp_path: Path) -> None:
    """Uploaded files and index files of a test live in its own temporary folder; background
    tasks run eagerly unless a test says otherwise."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INDEX_DIR = tmp_path / "indexes"
    settings.BACKGROUND_TASKS = "eager"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Rate-limit counters start at zero in each test: the local-memory cache outlives a test,
    and user ids repeat from one test to the next. Only local memory: clearing a Redis cache
    would flush the whole database, Celery's queues included."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()


@pytest.fixture(autouse=True)
def _default_language_after_each_test() -> Iterator[None]:
    """A request through ``LocaleMiddleware`` (or a test's ``translation.activate``) leaves its
    language active in the thread that served it; the next test in that thread would then read
    Russian messages where it expects the default. Each test ends with the default again, in
    this thread and in asgiref's sync thread."""
    yield
    from asgiref.sync import SyncToAsync
    from django.utils import translation

    translation.deactivate()
    SyncToAsync.single_thread_executor.submit(translation.deactivate).result(timeout=30)


@pytest.fixture(autouse=True)
def _no_connection_left_in_the_sync_thread() -> Iterator[None]:
    """Django's async ORM calls (``acount()``, ``aget()``...) from an async test run on asgiref's
    one sync thread and leave their connection open there (``database_sync_to_async`` closes
    its own). Closed after each test: on PostgreSQL an open one makes the test database's
    teardown warn that it "is being accessed by other users"."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=30)


@pytest.fixture
def password() -> str:
    return "correct horse battery staple 42"


@pytest.fixture
def alice(django_user_model: Any, password: str) -> Any:
    return django_user_model.objects.create_user("alice", "alice@example.com", password)


@pytest.fixture
def bob(django_user_model: Any, password: str) -> Any:
    return django_user_model.objects.create_user("bob", "bob@example.com", password)


@pytest.fixture
def alice_client(client: Any, alice: Any) -> Any:
    client.force_login(alice)
    return client


@pytest.fixture
def staff_client(client: Any, django_user_model: Any, password: str) -> Any:
    """A client signed in as a superuser (staff), for the admin."""
    client.force_login(
        django_user_model.objects.create_superuser("root", "root@example.com", password)
    )
    return client


@pytest.fixture
def fake_encoder() -> Iterator[Any]:
    """The deterministic 384-d hashing encoder instead of the real model (fast, no model
    load); modules and apps opt in with ``usefixtures``/an autouse fixture of theirs."""
    encoder = FakeEncoder()
    with use_encoder(encoder):
        yield encoder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port; yields its URL. Skips, saying how to install
    it, where redis-server is missing (CI installs it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc=proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 API server (moto's standalone server from PyPI, in its own process) on a free
    loopback port; yields its endpoint URL. Tests create their own buckets in it."""
    port = free_port()
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=60, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class ObjectStore:
    """A bucket of the S3 server that is the file store of a test (``STORAGE_URL``), with a
    boto3 client to check what is really stored."""

    endpoint: str
    name: str
    client: Any
    prefix: ClassVar[str] = "uploads"

    @property
    def url(self) -> str:
        return (
            f"s3://{self.name}/{self.prefix}?endpoint_url={self.endpoint}"
            "&region=us-east-1&addressing_style=path"
        )

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket: key -> bytes."""
        listed = self.client.list_objects_v2(Bucket=self.name).get("Contents", [])
        return {
            item["Key"]: self.client.get_object(Bucket=self.name, Key=item["Key"])["Body"].read()
            for item in listed
        }


def use_storage_url(settings: Any, url: str) -> None:
    """Make ``url`` the file store, as ``STORAGE_URL`` would at start-up."""
    settings.STORAGE_URL = url
    settings.STORAGES = {**settings.STORAGES, "default": default_storage_from_url(url)}


@pytest.fixture
def object_store(s3_server: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    """A fresh bucket in the S3 server, made the file store (with a key prefix); the keys come
    from the environment, as in production."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "raggen-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "raggen-test-secret")
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="raggen-test",
        aws_secret_access_key="raggen-test-secret",
    )
    store = ObjectStore(s3_server, f"raggen-{uuid.uuid4().hex[:12]}", client)
    client.create_bucket(Bucket=store.name)
    use_storage_url(settings, store.url)
    return store


def database_url_for_subprocess() -> str:
    """A DATABASE_URL that points a child process at the database this test uses."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    socket_folder = (db.get("OPTIONS") or {}).get("host", "")
    if socket_folder:  # a unix socket (bench/with_pgvector.py's server)
        return f"postgresql://{auth or '@'}/{db['NAME']}?host={socket_folder}"
    return (
        f"postgresql://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a server or worker started by a test: same database and files."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="raggen.settings",
        DATABASE_URL=database_url_for_subprocess(),
        DATA_DIR=str(settings.DATA_DIR),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        INDEX_DIR=str(settings.INDEX_DIR),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


# --- our own processes, started for real ------------------------------------------------------

BIN = Path(sys.executable).parent


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def start_celery_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[Any]:
    """A Celery worker process of the app (threads pool, one slot), logging to ``log_path``."""
    return subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "raggen",
            "worker",
            "--pool=threads",
            "--concurrency=1",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )


_STATIC_COLLECTED: set[str] = set()


def collect_static(env: dict[str, str]) -> None:
    """``manage.py collectstatic`` into the DATA_DIR of ``env``, once per test run: with DEBUG off
    (the default) the server serves static files from there, as after ``make run``."""
    key = env.get("DATA_DIR", "")
    if key in _STATIC_COLLECTED:
        return
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    _STATIC_COLLECTED.add(key)


SERVER = [sys.executable, "-m", "raggen.server"]


@contextmanager
def running_daphne(env: dict[str, str], log_path: Path) -> Iterator[int]:
    """The web process (daphne with the request body cap, ``python -m raggen.server``) serving
    the app on a free loopback port (yielded) until the block ends."""
    collect_static(env)
    port = free_port()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*SERVER, "-b", "127.0.0.1", "-p", str(port), "raggen.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, timeout=60, proc=proc)
            yield port
        finally:
            stop_process(proc)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``make test-pgvector`` (SEARCH_BACKEND=postgres) the tests of the local backend's
    index files are skipped; elsewhere the postgres backend's tests (marker ``pgvector``) are,
    unless the database is PostgreSQL with pgvector and the backend is postgres."""
    from django.conf import settings

    postgres = settings.SEARCH_BACKEND == "postgres"
    skip_local = pytest.mark.skip(
        reason="asserts the local backend's files; SEARCH_BACKEND=postgres"
    )
    skip_pg = pytest.mark.skip(
        reason="postgres search backend: run make test-pgvector (a throw-away pgvector server)"
    )
    for item in items:
        if postgres and item.get_closest_marker("local_index"):
            item.add_marker(skip_local)
        if not postgres and item.get_closest_marker("pgvector"):
            item.add_marker(skip_pg)
