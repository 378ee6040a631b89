"""Ingestion throughput with 1, 2 and 4 Celery worker processes on one machine (issue #17).

Real parts, started here: a PostgreSQL of the bench's own (``pgserver``: PostgreSQL 18 with
pgvector), a redis-server on a free port, and N ``celery worker`` processes of the app (threads
pool, one slot, one OpenMP thread each, so that the processes are what scales). Each round makes
a fresh knowledge base (MiniLM, the ``local`` encoder), stores its own documents (SciFact
abstracts no other round uses: the shared embedding cache must not serve them; ``--per-doc``
to a document) without queueing them, warms every worker with one
small document, then enqueues them all and times until the last is indexed.

    python bench/bench_workers.py [--docs 48] [--per-doc 6] [--workers 1,2,4]
                                  [--backend local|postgres] [--json PATH]

Prints documents/s and chunks/s per worker count and the scaling factor against one worker.
The bare library's figure in the same run is ``SentenceTransformer.encode`` of the chunks the
first round made, in this process with one thread: ``per_worker_over_bare`` is a worker's
chunks/s over it (the share of a worker's time that is the model).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = ROOT.parent / "shared" / "testdata" / "retrieval" / "scifact" / "corpus.jsonl"
BIN = Path(sys.executable).parent

SEED = """
import json, sys
from django.contrib.auth import get_user_model
from documents import services
spec = json.loads(sys.stdin.read())
User = get_user_model()
user = User.objects.filter(username="bench").first() or User.objects.create_user(
    "bench", password="a long enough password 1")
kb = services.knowledge_base_create(owner=user, name=spec["name"], encoder="local")
ids = []
for name, text in spec["documents"]:
    up = services.document_upload(knowledge_base=kb, user=user, name=name,
                                  chunks=[text.encode()], queue=False)
    ids.append(up.document.pk)
print(json.dumps({"kb": kb.pk, "ids": ids}))
"""

ENQUEUE = """
import json, sys
from documents.tasks import document_ingest
for pk in json.loads(sys.stdin.read()):
    document_ingest.delay(pk)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_texts(n: int) -> list[str]:
    texts = []
    with SCIFACT.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts.append(f"{row['title']}. {row['text']}".strip())
            if len(texts) == n:
                break
    return texts


def documents(texts: list[str], per_doc: int, tag: str) -> list[tuple[str, str]]:
    docs = []
    for start in range(0, len(texts), per_doc):
        body = "\n\n".join(texts[start : start + per_doc])
        docs.append((f"{tag}-{start // per_doc:04d}.txt", f"{tag} {start}\n\n{body}"))
    return docs


class Services:
    def __init__(self, root: Path) -> None:
        import pgserver

        self.pg = pgserver.get_server(root / "pg", cleanup_mode="stop")  # type: ignore[attr-defined]
        socket_dir = urllib.parse.parse_qs(urllib.parse.urlsplit(self.pg.get_uri()).query)["host"][
            0
        ]
        self.database_url = (
            f"postgresql://postgres@{urllib.parse.quote(socket_dir, safe='')}/postgres"
        )
        port = free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)

    def close(self) -> None:
        self.redis.terminate()
        self.redis.wait(timeout=10)
        self.pg.cleanup()


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return out.stdout


def done_count(database_url: str, ids: list[int]) -> int:
    import psycopg

    url = urllib.parse.urlsplit(database_url)
    host = urllib.parse.unquote(url.hostname or "")
    with psycopg.connect(host=host, user="postgres", dbname="postgres") as conn:
        row = conn.execute(
            "SELECT count(*) FROM documents_document WHERE id = ANY(%s) "
            "AND status IN ('indexed', 'failed')",
            (ids,),
        ).fetchone()
    return int(row[0]) if row else 0


def chunk_count(database_url: str, ids: list[int]) -> int:
    import psycopg

    url = urllib.parse.urlsplit(database_url)
    host = urllib.parse.unquote(url.hostname or "")
    with psycopg.connect(host=host, user="postgres", dbname="postgres") as conn:
        row = conn.execute(
            "SELECT count(*) FROM documents_chunk WHERE document_id = ANY(%s)", (ids,)
        ).fetchone()
    return int(row[0]) if row else 0


def chunk_texts(database_url: str, ids: list[int]) -> list[str]:
    import psycopg

    url = urllib.parse.urlsplit(database_url)
    host = urllib.parse.unquote(url.hostname or "")
    with psycopg.connect(host=host, user="postgres", dbname="postgres") as conn:
        rows = conn.execute(
            "SELECT text FROM documents_chunk WHERE document_id = ANY(%s) ORDER BY id", (ids,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def wait_all(database_url: str, ids: list[int], timeout: float = 3600) -> float:
    start = time.perf_counter()
    while done_count(database_url, ids) < len(ids):
        if time.perf_counter() - start > timeout:
            raise TimeoutError("documents not indexed in time")
        time.sleep(0.25)
    return time.perf_counter() - start


def round_with(
    workers: int, env: dict[str, str], svc: Services, texts: list[str], per_doc: int, root: Path
) -> dict[str, Any]:
    tag = f"w{workers}"
    seeded = json.loads(
        manage(env, "shell", "--no-imports", "-c", SEED, stdin=json.dumps(
            {"name": tag, "documents": documents(texts, per_doc, tag)}
        )).strip().splitlines()[-1]
    )  # fmt: skip
    warm = json.loads(
        manage(env, "shell", "--no-imports", "-c", SEED, stdin=json.dumps(
            {"name": f"{tag}-warm", "documents": [
                (f"warm{i}.txt", f"warm up {tag} {i}. {texts[i]}") for i in range(workers)
            ]}
        )).strip().splitlines()[-1]
    )  # fmt: skip
    procs = []
    for i in range(workers):
        log = (root / f"{tag}-{i}.log").open("w")
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "celery"),
                    "-A",
                    "raggen",
                    "worker",
                    "--pool=threads",
                    "--concurrency=1",
                    "--loglevel=WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"{tag}-{i}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        manage(env, "shell", "--no-imports", "-c", ENQUEUE, stdin=json.dumps(warm["ids"]))
        wait_all(svc.database_url, warm["ids"])
        start = time.perf_counter()
        manage(env, "shell", "--no-imports", "-c", ENQUEUE, stdin=json.dumps(seeded["ids"]))
        wait_all(svc.database_url, seeded["ids"])
        seconds = time.perf_counter() - start
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    chunks = chunk_count(svc.database_url, seeded["ids"])
    return {
        "texts": chunk_texts(svc.database_url, seeded["ids"]),
        "workers": workers,
        "documents": len(seeded["ids"]),
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "documents_per_s": round(len(seeded["ids"]) / seconds, 3),
        "chunks_per_s": round(chunks / seconds, 3),
    }


def bare_rate(texts: list[str]) -> float:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch
    from sentence_transformers import SentenceTransformer

    from embeddings.model_files import resolve_model_path

    torch.set_num_threads(1)
    model = SentenceTransformer(str(resolve_model_path("")), device="cpu")
    model.encode(texts[:8])
    start = time.perf_counter()
    model.encode(texts, batch_size=32)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument("--per-doc", type=int, default=6)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--backend", default="local", choices=("local", "postgres"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    texts = load_texts(args.docs * args.per_doc * len(args.workers.split(",")))
    root = Path(tempfile.mkdtemp(prefix="raggen-bench-workers-"))
    root.chmod(0o711)
    svc = Services(root)
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))},
            "DJANGO_SETTINGS_MODULE": "raggen.settings",
            "DATABASE_URL": svc.database_url,
            "REDIS_URL": svc.redis_url,
            "SEARCH_BACKEND": args.backend,
            "DATA_DIR": str(root / "data"),
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT),
        }
        manage(env, "migrate", "--noinput", "-v", "0")
        # Each round its own abstracts: the embedding cache (shared, in the database) would
        # otherwise serve a later round the vectors of an earlier one.
        per_round = args.docs * args.per_doc
        rounds = [
            round_with(
                int(n), env, svc, texts[k * per_round : (k + 1) * per_round], args.per_doc, root
            )
            for k, n in enumerate(args.workers.split(","))
        ]
    finally:
        svc.close()
        shutil.rmtree(root, ignore_errors=True)
    # The bare library on the very chunks the workers embedded (the first round's).
    bare = bare_rate(rounds[0]["texts"])
    for r in rounds:
        del r["texts"]
    one = rounds[0]["chunks_per_s"]
    for r in rounds:
        r["scaling"] = round(r["chunks_per_s"] / one, 2)
        r["per_worker_over_bare"] = round(r["chunks_per_s"] / r["workers"] / bare, 2)
    result = {
        "backend": args.backend,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "bare_encode_chunks_per_s_1_thread": round(bare, 2),
        "rounds": rounds,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
