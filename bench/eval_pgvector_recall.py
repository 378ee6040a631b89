"""HNSW recall@10 of the postgres backend's vector index against exact search.

    python bench/eval_pgvector_recall.py ../shared/testdata/retrieval/xquad-en [more sets...]

For each BEIR-layout set: the corpus and the queries are encoded with the default local encoder
(all-MiniLM-L6-v2, as ``eval_retrieval``; vectors kept in ``--cache``), the corpus goes into a
``vector(384)`` table with the HNSW index the backend builds (``vector_ip_ops``, pgvector's
defaults m=16, ef_construction=64) on a throw-away pgserver (pgvector 0.8.2), and every query's
10 nearest by the index (``hnsw.ef_search`` = each of ``--ef``) are compared with the exact 10
(a sequential scan). Prints recall@10 (mean |approximate ∩ exact| / 10) per set and ef_search,
and the ms per query of both.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from pgserver import get_server  # type: ignore[attr-defined]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embeddings.encoder import SentenceTransformerEncoder  # noqa: E402
from embeddings.model_files import model_name, resolve_model_path  # noqa: E402


def _texts(folder: Path) -> tuple[list[str], list[str]]:
    corpus = []
    for line in (folder / "corpus.jsonl").open():
        row = json.loads(line)
        title, text = row.get("title") or "", row.get("text") or ""
        corpus.append(f"{title} {text}".strip() if title else text)
    queries = [json.loads(line)["text"] for line in (folder / "queries.jsonl").open()]
    return corpus, queries


def _vectors(folder: Path, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    target = cache / f"{folder.name}-minilm.npz"
    if target.exists():
        with np.load(target) as data:
            return data["corpus"], data["queries"]
    corpus, queries = _texts(folder)
    configured = ""  # the bundled all-MiniLM-L6-v2
    encoder = SentenceTransformerEncoder(
        resolve_model_path(configured), name=model_name(configured), batch_size=32
    )
    vectors = encoder.encode(corpus), encoder.encode(queries)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(target, corpus=vectors[0], queries=vectors[1])
    return vectors


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(map(repr, vector.astype(np.float32).tolist())) + "]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--ef", type=int, nargs="+", default=[40, 100, 200])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "raggen-recall")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="raggen-recall-pg-")
    server = get_server(folder, cleanup_mode="delete")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            for dataset in args.sets:
                corpus, queries = _vectors(dataset, args.cache)
                dim = corpus.shape[1]
                conn.execute("DROP TABLE IF EXISTS v")
                conn.execute(f"CREATE TABLE v (id bigint PRIMARY KEY, e vector({dim}))")
                with conn.cursor().copy("COPY v (id, e) FROM STDIN") as copy:
                    for i, vector in enumerate(corpus):
                        copy.write_row((i, _literal(vector)))
                conn.execute("CREATE INDEX ON v USING hnsw (e vector_ip_ops)")
                conn.execute("ANALYZE v")
                exact, exact_ms = _top10(conn, queries, exact=True)
                # The index, even on a small table (the planner would scan 240 rows).
                conn.execute("SET enable_seqscan = off")
                conn.execute("SET enable_indexscan = on")
                plan = conn.execute(
                    "EXPLAIN SELECT id FROM v ORDER BY e <#> %s::vector LIMIT 10",
                    [_literal(queries[0])],
                ).fetchall()
                assert "Index Scan using v_e_idx" in str(plan), plan
                for ef in args.ef:
                    conn.execute(f"SET hnsw.ef_search = {ef}")
                    approx, ms = _top10(conn, queries, exact=False)
                    recall = np.mean(
                        [len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact, strict=True)]
                    )
                    print(
                        f"{dataset.name}: {len(corpus)} vectors, {len(queries)} queries, "
                        f"ef_search {ef}: recall@10 {recall:.4f} "
                        f"(hnsw {ms:.2f} ms/q, exact {exact_ms:.2f} ms/q)",
                        flush=True,
                    )
    finally:
        server.cleanup()


def _top10(
    conn: psycopg.Connection,
    queries: np.ndarray,
    *,
    exact: bool,
) -> tuple[list[list[int]], float]:
    conn.execute(f"SET enable_indexscan = {'off' if exact else 'on'}")
    conn.execute(f"SET enable_seqscan = {'on' if exact else 'off'}")
    out = []
    started = time.perf_counter()
    for q in queries:
        literal = _literal(q)
        rows = conn.execute(
            "SELECT id FROM v ORDER BY e <#> %s::vector LIMIT 10", [literal]
        ).fetchall()
        out.append([r[0] for r in rows])
    return out, 1000 * (time.perf_counter() - started) / max(len(queries), 1)


if __name__ == "__main__":
    main()
