"""A simulated multi-host run (issue #17): a database host (PostgreSQL with pgvector, Redis, an
S3 server), two worker hosts and a web host, each a network namespace with its own empty
``DATA_DIR`` (:mod:`raggen.tests.netns`). 200 documents are uploaded through the web host while
one worker host is killed mid-ingestion (SIGKILL of every process in it) and brought back. At
the end every document is indexed or failed with a reason, none is indexed twice (chunk
ordinals 0..n-1 once each), and a search from the web host finds every indexed document.

Root only (namespaces); marked ``multihost``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, collect_static
from raggen.tests import netns

pgserver = pytest.importorskip("pgserver")
pytest.importorskip("moto")

_why_not = netns.available()
pytestmark = [
    pytest.mark.multihost,
    pytest.mark.skipif(_why_not is not None, reason=f"network namespaces: {_why_not}"),
]

DOCUMENTS = 200
PYTHON = sys.executable
BIN = Path(sys.executable).parent
PG_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"

# The client, run on the web host: upload the documents (each with its own code word), then
# wait. Prints one JSON line per finished step for the test to follow.
CLIENT = r"""
import json, sys, time, httpx
base, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
h = {"Authorization": f"Bearer {token}"}
c = httpx.Client(base_url=base, headers=h, timeout=60)
kb = c.post("/api/v1/knowledge-bases", json={"name": "multihost", "encoder": "local"})
kb.raise_for_status()
kb_id = kb.json()["id"]
print(json.dumps({"kb": kb_id}), flush=True)
def doc(i):
    text = (f"Документ {i}. Кодовое слово kw{i:04d}zz встречается только здесь.\n\n"
            f"Второй абзац документа {i} о складском учёте и поставках.\n")
    return ("files", (f"doc{i:04d}.txt", text.encode(), "text/plain"))
for start in range(0, count, 10):  # ten files a request: uploads are rate limited per minute
    r = c.post(f"/api/v1/knowledge-bases/{kb_id}/documents",
               files=[doc(i) for i in range(start, min(count, start + 10))])
    if r.status_code >= 300:
        print(json.dumps({"upload_failed": start, "status": r.status_code, "body": r.text}),
              flush=True)
        sys.exit(1)
    print(json.dumps({"uploaded": start}), flush=True)
    time.sleep(1)
print(json.dumps({"done": True}), flush=True)
"""

SEARCH = r"""
import json, sys, httpx
base, token, kb_id, words = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
found = {}
for word in words:
    r = c.post("/api/v1/vectors/search", json={"knowledge_base_ids": [kb_id], "query": word,
               "mode": "hybrid", "top_k": 3})
    r.raise_for_status()
    hits = r.json()["hits"]
    found[word] = hits[0]["document_title"] if hits else None
print(json.dumps(found))
"""

SEED = """
from django.contrib.auth import get_user_model
from accounts.services import api_token_create
user = get_user_model().objects.create_user("ops", password="a long enough password 1")
print(api_token_create(user=user, name="multihost", scope="write")[1])
"""

REPORT = """
import json
from collections import Counter
from documents.models import Chunk, Document
docs = []
for d in Document.objects.order_by("id"):
    ordinals = list(Chunk.objects.filter(document=d).values_list("ordinal", flat=True))
    docs.append({"id": d.id, "title": d.title, "status": d.status,
                 "reason": d.failure_reason, "attempts": d.attempts, "ordinals": sorted(ordinals),
                 "duplicates": [o for o, n in Counter(ordinals).items() if n > 1]})
from django.db import connection
vectors = distinct = keywords = 0
with connection.cursor() as cursor:
    # The vector table is made by the first write of its dimension.
    cursor.execute("SELECT to_regclass('raggen_search_vec_384') IS NOT NULL")
    if cursor.fetchone()[0]:
        cursor.execute("SELECT count(*), count(DISTINCT chunk_id) FROM raggen_search_vec_384")
        vectors, distinct = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM raggen_search_chunk")
        keywords = cursor.fetchone()[0]
print(json.dumps({"documents": docs, "vectors": vectors, "distinct_vectors": distinct,
                  "keyword_rows": keywords}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cluster() -> Iterator[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="raggen-multihost-"))
    root.chmod(0o711)
    net = netns.Network(root)
    try:
        db = net.add_host("db")
        workers = [net.add_host("worker1"), net.add_host("worker2")]
        web = net.add_host("web")
        yield _start(root, db, workers, web)
    finally:
        net.close()
        shutil.rmtree(root, ignore_errors=True)


def _start(
    root: Path, db: netns.Host, workers: list[netns.Host], web: netns.Host
) -> dict[str, Any]:
    # PostgreSQL + pgvector: a data folder made by pgserver, then the server run in the database
    # host, listening on that host's address only.
    pgdata = root / "pgdata"
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
    with (pgdata / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {db.address.rsplit('.', 1)[0]}.0/24 trust\n")
    db.start(
        [str(PG_BIN / "postgres"), "-D", str(pgdata), "-h", db.address, "-p", "5432",
         "-k", str(pgdata)],
        user=server.system_user,
        log=root / "postgres.log",
    )  # fmt: skip
    db.start(
        ["redis-server", "--bind", db.address, "--port", "6379", "--save", "",
         "--appendonly", "no", "--protected-mode", "no"],
        log=root / "redis.log",
    )  # fmt: skip
    db.start([PYTHON, "-m", "moto.server", "-H", db.address, "-p", "9000"], log=root / "s3.log")
    for port in (5432, 6379, 9000):
        netns.wait_for_tcp(web, port, target=db.address)

    secret = "multihost-" + "s" * 50
    common = {
        "PATH": os.environ["PATH"],
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "raggen.settings",
        "SECRET_KEY": secret,
        "DATABASE_URL": f"postgresql://postgres@{db.address}:5432/postgres",
        "REDIS_URL": f"redis://{db.address}:6379/0",
        "SEARCH_BACKEND": os.environ.get("MULTIHOST_SEARCH_BACKEND", "postgres"),
        "STORAGE_URL": f"s3://raggen/files?endpoint_url=http://{db.address}:9000",
        "AWS_ACCESS_KEY_ID": "multihost",
        "AWS_SECRET_ACCESS_KEY": "multihost-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CELERY_VISIBILITY_TIMEOUT": "20",
        "INGEST_STALE_SECONDS": "20",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "ALLOWED_HOSTS": web.address,
        # The check below searches every document once from one client.
        "RATE_LIMIT_SEARCH_PER_MINUTE": "0",
    }

    def env_for(host: netns.Host) -> dict[str, str]:
        return {**common, "DATA_DIR": str(host.data_dir)}

    manage = [PYTHON, str(ROOT / "manage.py")]
    # The bucket, made on the S3 server from the web host.
    web.run(
        [PYTHON, "-c",
         "import boto3,sys; "
         "boto3.client('s3', endpoint_url=sys.argv[1]).create_bucket(Bucket='raggen')",
         f"http://{db.address}:9000"],
        env=env_for(web),
    )  # fmt: skip
    web.run([*manage, "migrate", "--noinput", "-v", "0"], env=env_for(web), cwd=ROOT)
    token = (
        web.run([*manage, "shell", "--no-imports", "-c", SEED], env=env_for(web), cwd=ROOT)
        .stdout.strip()
        .splitlines()[-1]
    )
    collect_static(env_for(web))
    web.start(
        [PYTHON, "-m", "raggen.server", "-b", web.address, "-p", "8000", "raggen.asgi:application"],
        env=env_for(web),
        log=root / "web.log",
        cwd=ROOT,
    )
    netns.wait_for_tcp(web, 8000, target=web.address)

    def start_worker(host: netns.Host) -> None:
        host.start(
            [str(BIN / "celery"), "-A", "raggen", "worker", "--pool=threads", "--concurrency=1",
             "--loglevel=INFO", "--without-gossip", "--without-mingle", "-n", f"{host.name}@%h"],
            env=env_for(host),
            log=root / f"{host.name}.log",
            cwd=ROOT,
        )  # fmt: skip

    for host in workers:
        start_worker(host)
    return {
        "root": root,
        "db": db,
        "web": web,
        "workers": workers,
        "start_worker": start_worker,
        "env": env_for(web),
        "base": f"http://{web.address}:8000",
        "token": token,
        "manage": manage,
    }


def _state(c: dict[str, Any]) -> dict[str, Any]:
    out = c["web"].run(
        [*c["manage"], "shell", "--no-imports", "-c", REPORT], env=c["env"], cwd=ROOT
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _report(c: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_state(c)["documents"])


def test_two_worker_hosts_one_killed_mid_ingestion_every_document_ends_once(cluster):
    c = cluster
    web: netns.Host = c["web"]
    client_log = c["root"] / "client.log"
    client = web.start(
        [PYTHON, "-c", CLIENT, c["base"], c["token"], str(DOCUMENTS)], env=c["env"], log=client_log
    )
    # Kill the first worker host once ingestion is under way on both.
    deadline = time.monotonic() + 600
    while True:
        docs = _report(c) if client_log.exists() and "uploaded" in client_log.read_text() else []
        indexed = sum(d["status"] == "indexed" for d in docs)
        if indexed >= 10:
            break
        assert time.monotonic() < deadline, client_log.read_text()[-2000:]
        time.sleep(2)
    victim: netns.Host = c["workers"][0]
    killed = victim.kill_all()
    assert killed >= 1
    assert victim.pids() == []
    time.sleep(3)
    c["start_worker"](victim)

    assert client.wait(timeout=900) == 0, client_log.read_text()[-2000:]
    kb_id = json.loads(client_log.read_text().splitlines()[0])["kb"]
    deadline = time.monotonic() + 900
    while True:
        docs = _report(c)
        if len(docs) == DOCUMENTS and all(d["status"] in ("indexed", "failed") for d in docs):
            break
        assert time.monotonic() < deadline, [d for d in docs if d["status"] not in ("indexed",)][:5]
        time.sleep(3)

    for d in docs:
        assert d["duplicates"] == [], d
        if d["status"] == "indexed":
            assert d["ordinals"] == list(range(len(d["ordinals"]))) and d["ordinals"], d
        else:
            assert d["reason"], d
    indexed = [d for d in docs if d["status"] == "indexed"]
    assert len(indexed) >= DOCUMENTS * 0.95, [d for d in docs if d["status"] == "failed"][:3]

    words = {f"kw{int(d['title'][3:7]):04d}zz": d["title"] for d in indexed}
    found = json.loads(
        web.run([PYTHON, "-c", SEARCH, c["base"], c["token"], str(kb_id), json.dumps(list(words))],
                env=c["env"]).stdout
    )  # fmt: skip
    missing = {w: t for w, t in words.items() if found.get(w) != t}
    assert missing == {}, missing
    # The searchable rows are in PostgreSQL, once per chunk of an indexed document.
    state = _state(c)
    chunks = sum(len(d["ordinals"]) for d in indexed)
    assert state["vectors"] == state["distinct_vectors"] == state["keyword_rows"] == chunks
    # No host kept state of its own: the files are in the S3 server, the index in PostgreSQL.
    for host in (*c["workers"], web):
        for folder in ("media", "index"):
            path = host.data_dir / folder
            assert not path.exists() or not any(p.is_file() for p in path.rglob("*")), (
                host.name,
                folder,
            )
    failed = [d for d in docs if d["status"] == "failed"]
    print(  # noqa: T201 - the run's figures, shown with -s
        f"multihost: {len(indexed)} indexed, {len(failed)} failed, {chunks} chunks, "
        f"{killed} processes killed on {victim.name}, "
        f"{sum(d['attempts'] > 1 for d in docs)} documents taken again after the kill"
    )
