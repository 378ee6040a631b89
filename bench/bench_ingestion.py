"""Ingestion speed and memory (issue: documents).

1. Throughput, one run, same text PDF: pages per second from upload to searchable (the
   product's ``document_upload`` + ``document_ingest``), against text extraction alone
   (``documents.readers.iter_document``) and encoding alone (a bare
   ``SentenceTransformer.encode`` of the same chunk texts). Upload-to-searchable runs both
   stages one after the other, so its bound is 1 / (1/extract + 1/encode); the ratio to that
   bound is what the product adds or loses.
2. Peak memory of a worker process ingesting a small and a large PDF (default 100 and 1,000
   pages): the growth must stay near the vectors' own bytes, not grow with the page count.

    python bench/bench_ingestion.py [--pages 150] [--memory-pages 100,1000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def setup_django(tmp: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DATA_DIR"] = str(tmp)
    os.environ["BACKGROUND_TASKS"] = "eager"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raggen.settings")
    os.environ.setdefault("LOG_LEVEL", "warning")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def extract_only(path: Path) -> tuple[float, list[Any]]:
    from documents.readers import iter_document

    started = time.perf_counter()
    pages = list(iter_document(path, "pdf"))
    return time.perf_counter() - started, pages


def encode_only(texts: list[str]) -> float:
    from sentence_transformers import SentenceTransformer

    from embeddings.model_files import resolve_model_path

    model = SentenceTransformer(str(resolve_model_path("")), device="cpu")
    model.encode(texts[:8])  # warm-up, as the product's encoder is warm after its first batch
    started = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return time.perf_counter() - started


def product_path(path: Path) -> tuple[float, int]:
    from django.contrib.auth import get_user_model

    from documents import ingestion, services
    from documents.models import Document
    from documents.retrieval import get_encoder

    get_encoder().encode(["warm-up"])
    user = get_user_model().objects.create_user("bench", "bench@example.com", "x" * 12)
    kb = services.knowledge_base_create(owner=user, name=f"bench-{time.time_ns()}")
    started = time.perf_counter()
    with path.open("rb") as handle:
        upload = services.document_upload(
            knowledge_base=kb,
            user=user,
            name=path.name,
            chunks=iter(lambda: handle.read(1 << 20), b""),
            queue=False,
        )
    ingestion.document_ingest(upload.document.pk)
    elapsed = time.perf_counter() - started
    document = Document.objects.get(pk=upload.document.pk)
    assert document.status == "indexed", document.failure_reason
    return elapsed, document.chunk_count


def throughput(tmp: Path, pages: int) -> dict[str, Any]:
    from _pdf import write_pdf

    from documents.chunking import ChunkingOptions, chunk_pages

    pdf = write_pdf(tmp / f"throughput-{pages}.pdf", pages)
    extract_s, parsed = extract_only(pdf)
    texts = [c.text for c in chunk_pages(parsed, ChunkingOptions())]
    encode_s = encode_only(texts)
    product_s, chunks = product_path(pdf)
    bound = extract_s + encode_s
    return {
        "pages": pages,
        "chunks": chunks,
        "extract_pages_per_s": pages / extract_s,
        "encode_pages_per_s": pages / encode_s,
        "sequential_bound_pages_per_s": pages / bound,
        "product_pages_per_s": pages / product_s,
        "product_vs_bound": bound / product_s,
    }


MEMORY_CHILD = """
import os, resource, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
tmp = Path(tempfile.mkdtemp(prefix="raggen-bench-mem-"))
from bench_ingestion import setup_django, product_path
from _pdf import write_pdf
setup_django(tmp)
pdf = write_pdf(tmp / "mem.pdf", {pages})
from documents.retrieval import get_encoder
get_encoder().encode(["warm-up"])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
elapsed, chunks = product_path(pdf)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, chunks, elapsed)
"""


def peak_memory(pages: int) -> dict[str, Any]:
    code = MEMORY_CHILD.format(root=str(ROOT), bench=str(ROOT / "bench"), pages=pages)
    out = (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    before_kb, after_kb, chunks, elapsed = out.split()
    return {
        "pages": pages,
        "chunks": int(chunks),
        "rss_before_ingest_mb": int(before_kb) / 1024,
        "peak_rss_mb": int(after_kb) / 1024,
        "growth_mb": (int(after_kb) - int(before_kb)) / 1024,
        "vector_mb": int(chunks) * 384 * 4 / 1024 / 1024,
        "seconds": float(elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=150)
    parser.add_argument("--memory-pages", default="100,1000")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="raggen-bench-"))
    setup_django(tmp)
    result: dict[str, Any] = {"throughput": throughput(tmp, args.pages), "memory": []}
    t = result["throughput"]
    print(f"PDF of {t['pages']} pages, {t['chunks']} chunks")
    print(f"  extraction alone      {t['extract_pages_per_s']:8.1f} pages/s")
    print(f"  encoding alone        {t['encode_pages_per_s']:8.1f} pages/s")
    print(f"  sequential bound      {t['sequential_bound_pages_per_s']:8.1f} pages/s")
    print(
        f"  upload to searchable  {t['product_pages_per_s']:8.1f} pages/s "
        f"({t['product_vs_bound']:.2f}x the bound)"
    )
    for pages in (int(p) for p in args.memory_pages.split(",")):
        m = peak_memory(pages)
        result["memory"].append(m)
        print(
            f"worker ingesting {pages} pages ({m['chunks']} chunks): peak RSS "
            f"{m['peak_rss_mb']:.0f} MB, growth during ingestion {m['growth_mb']:.0f} MB "
            f"(vectors alone {m['vector_mb']:.1f} MB), {m['seconds']:.0f} s"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
