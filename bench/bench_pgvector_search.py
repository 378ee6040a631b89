"""Hybrid search on the postgres backend against the same two SQL statements run bare, and
against the local backend, on the same SYNTHETIC chunks (random unit vectors, Zipf-distributed
words), in one run (issue #17).

A PostgreSQL 18 with pgvector 0.8.2 of the bench's own (``pgserver``); the chunk rows and their
stored vectors are written once, then each backend is filled from them (``rebuild``, as
``manage.py rebuild_index --backend`` does). Per query, interleaved and each the best of 3:

* **bare SQL**: the backend's own two statements (``nearest``'s HNSW query with its
  ``SET LOCAL`` settings, and the BM25 keyword query) through one psycopg cursor, nothing else;
* **postgres backend**: ``PostgresBackend.search`` (hybrid, a given query vector, top 10):
  both statements, the knowledge base's statistics, fusion and the hits' hydration;
* **local backend**: ``LocalBackend.search``, the same call.

    python bench/bench_pgvector_search.py [--sizes 10000,100000] [--queries 100] [--json PATH]
"""

# ruff: noqa: B023 - the per-size closures are called within their own iteration
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DIM = 384
VOCAB = 20_000
WORDS = 60


def words(n: int, rng: np.random.Generator) -> list[str]:
    ranks = np.minimum(rng.zipf(1.07, size=(n, WORDS)), VOCAB)
    return [" ".join(f"w{r}x" for r in row) for row in ranks]


def unit(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def setup(root: Path) -> Any:
    from pgserver import get_server  # type: ignore[attr-defined]

    server = get_server(root / "pg", cleanup_mode="stop")
    socket_dir = urllib.parse.parse_qs(urllib.parse.urlsplit(server.get_uri()).query)["host"][0]
    os.environ.update(
        DATABASE_URL=f"postgresql://postgres@{urllib.parse.quote(socket_dir, safe='')}/postgres",
        SEARCH_BACKEND="postgres",
        DATA_DIR=str(root / "data"),
        DJANGO_SETTINGS_MODULE="raggen.settings",
        HF_HUB_OFFLINE="1",
        RATE_LIMIT_SEARCH_PER_MINUTE="0",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return server


def fill(n: int, rng: np.random.Generator) -> Any:
    from django.contrib.auth import get_user_model

    from documents.models import Chunk, Document, KnowledgeBase
    from documents.retrieval.encoders import encoder_for

    user, _ = get_user_model().objects.get_or_create(username="bench")
    kb = KnowledgeBase.objects.create(owner=user, name=f"bench {n}", encoder="local")
    # The stored vectors are the encoder's (synthetic, of its dimension): no rebuild re-encodes.
    encoder = encoder_for(knowledge_base=kb)
    kb.embedding_model, kb.embedding_dimension = encoder.name, encoder.dimension
    kb.save(update_fields=["embedding_model", "embedding_dimension"])
    doc = Document.objects.create(
        knowledge_base=kb, title="synthetic", original_name="s.txt", file_type="txt",
        sha256=f"{n:064d}", status="indexed",
    )  # fmt: skip
    step = 20_000
    for start in range(0, n, step):
        count = min(step, n - start)
        texts = words(count, rng)
        vectors = unit(count, rng)
        Chunk.objects.bulk_create(
            Chunk(
                document=doc,
                knowledge_base=kb,
                ordinal=start + i,
                text=texts[i],
                token_count=WORDS,
                vector=vectors[i].tobytes(),
            )
            for i in range(count)
        )
    return kb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="raggen-bench-pg-"))
    root.chmod(0o711)
    server = setup(root)
    results: dict[str, Any] = {"cpus": os.cpu_count(), "sizes": []}
    try:
        from django.db import connection, transaction

        from documents.retrieval.backend import backend_named
        from documents.retrieval.postgres_schema import TS_CONFIG, vector_literal, vector_table
        from documents.retrieval.postgres_search import _KEYWORD_SQL
        from embeddings.keyword import K1, B

        rng = np.random.default_rng(7)
        for n in (int(s) for s in args.sizes.split(",")):
            t0 = time.perf_counter()
            kb = fill(n, rng)
            rows_s = time.perf_counter() - t0
            postgres, local = backend_named("postgres"), backend_named("local")
            t0 = time.perf_counter()
            postgres.rebuild(knowledge_base=kb)
            pg_build = time.perf_counter() - t0
            t0 = time.perf_counter()
            local.rebuild(knowledge_base=kb)
            local_build = time.perf_counter() - t0
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            queries = [" ".join(q.split()[:3]) for q in words(args.queries, rng)]
            qvecs = unit(args.queries, rng)
            keyword_sql = _KEYWORD_SQL.format(
                config=TS_CONFIG, k1=float(K1), b=float(B), allowed=""
            )
            table = vector_table(DIM)

            def bare(i: int) -> None:
                literal = vector_literal(qvecs[i])
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SET LOCAL hnsw.ef_search = 100")
                    cursor.execute("SET LOCAL hnsw.iterative_scan = strict_order")
                    cursor.execute(
                        f"SELECT chunk_id, -(embedding <#> %s::vector) FROM {table} "
                        "WHERE kb_id = %s ORDER BY embedding <#> %s::vector LIMIT %s",
                        [literal, kb.pk, literal, 100],
                    )
                    cursor.fetchall()
                with connection.cursor() as cursor:
                    cursor.execute(
                        keyword_sql,
                        {"query": queries[i], "kbs": [kb.pk], "allowed": None, "limit": 100},
                    )
                    cursor.fetchall()

            def through(backend: Any) -> Any:
                def run(i: int) -> None:
                    backend.search(
                        knowledge_bases=[kb], query=queries[i], mode="hybrid", top_k=10,
                        min_score=None, dense_weight=None, keyword_weight=None,
                        document_ids=None, file_types=None, candidates=100,
                        query_vector=qvecs[i].tolist(), fusion="convex",
                    )  # fmt: skip

                return run

            parts = {"bare_sql": bare, "postgres": through(postgres), "local": through(local)}
            for i in range(min(5, args.queries)):
                for fn in parts.values():
                    fn(i)
            samples: dict[str, list[float]] = {name: [] for name in parts}
            for i in range(args.queries):
                for name, fn in parts.items():
                    best = float("inf")
                    for _ in range(3):
                        t0 = time.perf_counter()
                        fn(i)
                        best = min(best, time.perf_counter() - t0)
                    samples[name].append(best * 1000)
            row: dict[str, Any] = {
                "chunks": n,
                "rows_written_s": round(rows_s, 1),
                "postgres_build_s": round(pg_build, 1),
                "local_build_s": round(local_build, 1),
            }
            for name, ms in samples.items():
                row[f"{name}_p50_ms"] = round(statistics.median(ms), 2)
                row[f"{name}_p99_ms"] = round(percentile(ms, 0.99), 2)
            row["postgres_over_bare_p50"] = round(
                row["postgres_p50_ms"] / row["bare_sql_p50_ms"], 2
            )
            row["postgres_over_bare_p99"] = round(
                row["postgres_p99_ms"] / row["bare_sql_p99_ms"], 2
            )
            row["postgres_over_local_p50"] = round(row["postgres_p50_ms"] / row["local_p50_ms"], 2)
            row["load_average"] = os.getloadavg()
            print(json.dumps(row), flush=True)
            results["sizes"].append(row)
    finally:
        from django.db import connections

        connections.close_all()
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
