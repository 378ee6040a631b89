"""nDCG@10 of the multilingual encoder (multilingual-e5-small 4-bit, ``embeddings.multilingual``)
on BEIR folders: BM25 alone, dense alone, and the product's fusion at several weights, so that the
hybrid weights can be chosen by measurement.

    python bench/eval_multilingual.py PATH [PATH ...] [--encoder e5|minilm] [--cache DIR] [--json]

Outside Django, with the engine's own pieces: BM25 is ``embeddings.keyword`` (the product's
tokenizer and Lucene BM25, k1 1.5 / b 0.75), the dense side is the encoder (passages with
``encode``, queries with ``encode_queries``; exact inner product), fusion is
``embeddings.hybrid.fuse`` over the top 100 of each side, metrics ``embeddings.evaluation``. One
document = one unit (title + " " + text, as BEIR and ``eval_retrieval`` index it; the product
chunks long documents, so its figures can differ slightly on scifact). Passage vectors are cached
in ``--cache`` (default ``bench/results/vectors/``, git-ignored), one folder per dataset and model,
``PART_SIZE`` passages per file, each saved as soon as it is encoded: an interrupted run (or one
stopped on purpose) resumes where it stopped when the same command is run again, and a finished
one only encodes the queries. The sets: ``../shared/testdata/retrieval/{xquad-ru,xquad-en,scifact}``
and ``bench/datasets/tydiqa-ru`` (Russian natural questions, see its README).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embeddings import evaluation, hybrid, keyword  # noqa: E402  (plain Python, no Django)
from embeddings.encoder import Vectors  # noqa: E402

TOP_K = 100
# Passages per cache file: what an interrupted run can lose.
PART_SIZE = 128
# (label, method, dense weight, keyword weight)
FUSIONS: list[tuple[str, str, float, float]] = [
    ("hybrid convex 1:1", "convex", 1.0, 1.0),
    ("hybrid convex 0.5:1", "convex", 0.5, 1.0),
    ("hybrid convex 0.7:1", "convex", 0.7, 1.0),
    ("hybrid convex 1.5:1", "convex", 1.5, 1.0),
    ("hybrid convex 2:1", "convex", 2.0, 1.0),
    ("hybrid rrf 1:1", "rrf", 1.0, 1.0),
    ("hybrid rrf 2:1", "rrf", 2.0, 1.0),
]


def make_encoder(kind: str) -> tuple[str, Callable[[Sequence[str]], Vectors], Callable[..., Any]]:
    """(model name, passage encoder, query encoder)."""
    if kind == "e5":
        from embeddings.multilingual import MultilingualE5Encoder

        e5 = MultilingualE5Encoder()
        return e5.name, e5.encode, e5.encode_queries
    from embeddings.encoder import SentenceTransformerEncoder
    from embeddings.model_files import model_name, resolve_model_path

    st = SentenceTransformerEncoder(resolve_model_path(""), name=model_name(""))
    return st.name, st.encode, st.encode


def top(scores: np.ndarray[Any, Any], k: int) -> list[tuple[int, float]]:
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.lexsort((part, -scores[part]))]
    return [(int(i), float(scores[i])) for i in order]


def cached_passage_vectors(
    bodies: Sequence[str],
    encode: Callable[[Sequence[str]], Vectors],
    folder: Path,
    log: Callable[[str], None],
) -> Vectors:
    """The passages' vectors, encoded ``PART_SIZE`` at a time, each part saved in ``folder`` as
    soon as it is done (``part-00000.npy``, ...), so an interrupted run resumes where it
    stopped. ``texts.sha256`` fingerprints the passages: parts made for other texts are
    discarded."""
    fingerprint = hashlib.sha256("\x00".join(bodies).encode("utf-8")).hexdigest()
    stamp = folder / "texts.sha256"
    if stamp.exists() and stamp.read_text().strip() != fingerprint:
        for part in folder.glob("part-*.npy"):
            part.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint + "\n")
    parts: list[Vectors] = []
    done = encoded = 0
    started = time.perf_counter()
    for index, start in enumerate(range(0, len(bodies), PART_SIZE)):
        path = folder / f"part-{index:05d}.npy"
        batch = bodies[start : start + PART_SIZE]
        if path.exists():
            parts.append(np.load(path))
            done += len(batch)
            continue
        vectors = encode(batch)
        tmp = path.with_name(path.stem + ".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)  # a part is either whole or absent
        parts.append(vectors)
        encoded += len(batch)
        seconds = time.perf_counter() - started
        log(
            f"{folder.name}: {start + len(batch)}/{len(bodies)} passages "
            f"({encoded} encoded in {seconds:.0f} s, {encoded / seconds:.2f}/s)"
        )
    if done:
        log(f"{folder.name}: {done} passage vectors from {folder}")
    return np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)


def evaluate_folder(
    folder: Path, kind: str, cache: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    docs = list(evaluation.read_corpus(folder))
    queries = evaluation.read_queries(folder)
    qrels = evaluation.read_qrels(folder, "test")
    qids = [q for q in qrels if q in queries]
    bodies = [d.body for d in docs]
    tokenizer = keyword.Tokenizer()
    segment = keyword.KeywordSegment.build(
        list(range(len(docs))), [tokenizer.tokenize(b) for b in bodies]
    )
    views = [keyword.view(segment, None)]

    name, encode_passages, encode_queries = make_encoder(kind)
    passage_vectors = cached_passage_vectors(
        bodies, encode_passages, cache / f"{folder.name}--{name.replace('/', '_')}", log
    )
    started = time.perf_counter()
    query_vectors = encode_queries([queries[q] for q in qids])
    log(f"{folder.name}: encoded {len(qids)} queries in {time.perf_counter() - started:.0f} s")

    runs: dict[str, evaluation.Run] = {"bm25": {}, "dense": {}}
    runs.update({label: {} for label, *_ in FUSIONS})

    def as_run(ranked: Sequence[tuple[int, float]]) -> list[tuple[str, float]]:
        return [(docs[i].doc_id, s) for i, s in ranked]

    for row, qid in enumerate(qids):
        kw = keyword.search(views, tokenizer.tokenize(queries[qid]), TOP_K)
        dense = top(passage_vectors @ query_vectors[row], TOP_K)
        runs["bm25"][qid] = as_run(list(kw))
        runs["dense"][qid] = as_run(dense)
        for label, method, wd, wk in FUSIONS:
            hits = hybrid.fuse(dense, kw, hybrid.Weights(wd, wk), method=method, limit=TOP_K)
            runs[label][qid] = [(docs[h.chunk_id].doc_id, h.score) for h in hits]
    return {
        "dataset": folder.name,
        "model": name,
        "queries": len(qids),
        "docs": len(docs),
        "results": {mode: evaluation.evaluate(run, qrels) for mode, run in runs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("paths", type=Path, nargs="+", help="BEIR folders")
    parser.add_argument("--encoder", choices=["e5", "minilm"], default="e5")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "results" / "vectors")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    for folder in args.paths:
        result = evaluate_folder(folder, args.encoder, args.cache, log)
        if args.json:
            print(json.dumps(result, sort_keys=True), flush=True)
            continue
        print(
            f"{result['dataset']} ({result['docs']} docs, {result['queries']} queries), "
            f"{result['model']}:"
        )
        for mode, m in result["results"].items():
            print(
                f"  {mode:<22} nDCG@10 {m['ndcg@10']:.4f}  R@10 {m['recall@10']:.4f}  "
                f"R@100 {m['recall@100']:.4f}  MRR@10 {m['mrr@10']:.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
