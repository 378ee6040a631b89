"""What the grounding check (chat.grounding) costs on a typical answer: six sentences (five copied
from three xquad-ru passages with citations, one invented) against eight passages, as the chat
gives a model; stem overlap alone (what the product runs) and with the bundled all-MiniLM-L6-v2.

    python bench/bench_grounding.py             # stem overlap: 20 runs
    python bench/bench_grounding.py --encoder   # + all-MiniLM-L6-v2: 3 runs after a warm-up

Plain Python, no Django, no database. Output: milliseconds per answer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat import grounding  # noqa: E402

CORPUS = Path("/work/shared/testdata/retrieval/xquad-ru/corpus.jsonl")


def _answer_and_passages() -> tuple[str, list[str]]:
    with CORPUS.open(encoding="utf-8") as lines:
        rows = [json.loads(line) for _, line in zip(range(48), lines, strict=False)]
    passages = [r["text"] for r in rows[40:48]]
    copied = [s.text for p in passages[:3] for s in grounding.split_sentences(p)][:5]
    answer = " ".join(f"{s} [{i % 3 + 1}]" for i, s in enumerate(copied))
    return answer + " Это предложение выдумано полностью про Наполеона в 1812 году.", passages


def _timed(runs: int, **options: object) -> tuple[list[float], grounding.GroundingReport]:
    grounding.check(**options)  # type: ignore[arg-type]  # warm-up
    times, report = [], None
    for _ in range(runs):
        started = time.perf_counter()
        report = grounding.check(**options)  # type: ignore[arg-type]
        times.append((time.perf_counter() - started) * 1000)
    assert report is not None
    return times, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", action="store_true", help="also with all-MiniLM-L6-v2")
    args = parser.parse_args()
    answer, passages = _answer_and_passages()
    print(f"answer: {len(answer)} chars; passages: {[len(p) for p in passages]} chars")
    times, report = _timed(20, answer=answer, passages=passages)
    print(
        f"stem overlap: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms; "
        f"supported {report.supported}/{report.counted}"
    )
    if args.encoder:
        from embeddings.encoder import SentenceTransformerEncoder
        from embeddings.model_files import model_name, resolve_model_path

        encoder = SentenceTransformerEncoder(resolve_model_path(""), name=model_name(""))
        times, report = _timed(3, answer=answer, passages=passages, encoder=encoder)
        print(
            f"all-MiniLM-L6-v2: {', '.join(f'{t:.0f}' for t in times)} ms; "
            f"supported {report.supported}/{report.counted}"
        )


if __name__ == "__main__":
    main()
