"""Indexing throughput of the product against a bare ``SentenceTransformer.encode`` of the same
real texts (SciFact abstracts, ~200-300 tokens, truncated at 256 by the model), in one run.

The product path is ``documents.retrieval.index_chunks``: cache look-up, encoding in batches,
``Chunk.vector`` written to the database, BM25 tokenisation and a FAISS + BM25 segment written to
disk. Runs against a throw-away SQLite database with an empty cache.

    python bench/bench_retrieval_encode.py [--texts 512] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCIFACT = ROOT.parent / "shared" / "testdata" / "retrieval" / "scifact" / "corpus.jsonl"


def load_texts(n: int) -> list[str]:
    texts = []
    with SCIFACT.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts.append(f"{row['title']} {row['text']}".strip())
            if len(texts) == n:
                break
    return texts


def setup_django(tmp: Path) -> None:
    # A throw-away database and index folder, so the cache starts empty.
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["INDEX_DIR"] = str(tmp / "indexes")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raggen.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def product_run(texts: list[str], run: int) -> tuple[float, float]:
    """(seconds in ``index_chunks``, seconds of them inside the encoder's ``encode``)."""
    from django.contrib.auth import get_user_model

    from documents import retrieval as services
    from documents.models import Chunk, Document, KnowledgeBase
    from documents.retrieval import text_sha256

    owner = get_user_model().objects.create_user(f"bench-{run}")
    kb = KnowledgeBase.objects.create(owner=owner, name="bench")
    doc = Document.objects.create(
        knowledge_base=kb,
        title="bench",
        original_name="b.txt",
        file="",
        file_type="txt",
        sha256="0",
    )
    # A different suffix per run keeps the cache cold for every run.
    chunks = Chunk.objects.bulk_create(
        [
            Chunk(
                document=doc,
                knowledge_base=kb,
                ordinal=i,
                text=f"{t} [{run}]",
                text_sha256=text_sha256(f"{t} [{run}]"),
            )
            for i, t in enumerate(texts)
        ]
    )
    encoder = services.encoder_for(knowledge_base=kb)
    original = encoder.encode
    inside = [0.0]

    def timed_encode(batch: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(batch)
        finally:
            inside[0] += time.perf_counter() - start

    encoder.encode = timed_encode  # type: ignore[method-assign,assignment]
    try:
        t0 = time.perf_counter()
        services.index_chunks(knowledge_base=kb, chunks=chunks)
        return time.perf_counter() - t0, inside[0]
    finally:
        del encoder.encode  # the class's method again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-encode-"))
    setup_django(tmp)
    import torch
    from django.conf import settings
    from sentence_transformers import SentenceTransformer

    from documents import retrieval as services
    from embeddings.model_files import resolve_model_path

    texts = load_texts(args.texts)
    bare_model = SentenceTransformer(str(resolve_model_path("")), device="cpu")
    batch = settings.EMBEDDING_BATCH_SIZE
    encoder = services.get_encoder()
    encoder.encode(texts[:8])  # load and warm up both models
    bare_model.encode(texts[:8], batch_size=batch)

    def bare_run(run: int) -> float:
        t0 = time.perf_counter()
        bare_model.encode(
            [f"{t} [{run}]" for t in texts],
            batch_size=batch,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return time.perf_counter() - t0

    bare_s, product_s, encode_s = [], [], []
    # Interleaved, and the order alternates between rounds (bare first, then product first), so
    # that machine noise and any warm-up effect hit both alike.
    for run in range(args.rounds):
        if run % 2:
            product, inside = product_run(texts, run)
            bare = bare_run(run)
        else:
            bare = bare_run(run)
            product, inside = product_run(texts, run)
        bare_s.append(bare)
        product_s.append(product)
        encode_s.append(inside)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    one_thread = bare_run(99)
    torch.set_num_threads(torch_threads)
    result: dict[str, Any] = {
        "texts": len(texts),
        "batch_size": batch,
        "bare_texts_per_s": round(len(texts) / min(bare_s), 1),
        "product_texts_per_s": round(len(texts) / min(product_s), 1),
        "ratio_best_runs": round(min(bare_s) / min(product_s), 3),
        # Each round runs bare then product back to back; the median of the rounds' ratios is
        # the figure least disturbed by other work on a shared machine.
        "ratio_median_of_rounds": round(
            statistics.median(b / p for b, p in zip(bare_s, product_s, strict=True)), 3
        ),
        "bare_runs_s": [round(s, 2) for s in bare_s],
        "product_runs_s": [round(s, 2) for s in product_s],
        # The product's own work around the model (cache, database, BM25, index files): the part
        # of the ratio the code decides, measured without the noise of the encoding itself.
        "product_encode_s": [round(s, 2) for s in encode_s],
        "product_overhead_s": [round(p - e, 3) for p, e in zip(product_s, encode_s, strict=True)],
        "overhead_share": round(
            statistics.median((p - e) / p for p, e in zip(product_s, encode_s, strict=True)), 4
        ),
        "torch_threads": torch_threads,
        "bare_one_thread_texts_per_s": round(len(texts) / one_thread, 1),
    }
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
