"""nDCG@10 of BARE bm25s (PyStemmer) on a BEIR folder: the reference figure of MEASURED.md,
computed to 4 decimals with the product's own metrics (``embeddings.evaluation``), outside the
product (no Django, no database).

    python bench/eval_bare_bm25.py PATH --language russian [--stopwords russian|english|none]

Corpus text = title + " " + text (as BEIR, MTEB and ``manage.py eval_retrieval`` index it);
``bm25s.tokenize(texts, stopwords=..., stemmer=Stemmer.Stemmer(language))``, ``bm25s.BM25()``
(Lucene variant, k1 = 1.5, b = 0.75), top 100 per query. ``--stopwords`` defaults to the
language; ``none`` keeps every word. Prints one line per run, ``--json`` a JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embeddings import evaluation  # noqa: E402  (plain Python, no Django)

# bm25s's stop word lists are named by ISO code or by English name.
_STOPWORDS = {"english": "en", "russian": "ru"}


def bare_run(
    folder: Path, language: str, stopwords: str | None, top_k: int = 100, split: str = "test"
) -> tuple[evaluation.Run, evaluation.Qrels]:
    import bm25s
    import Stemmer

    docs = list(evaluation.read_corpus(folder))
    queries = evaluation.read_queries(folder)
    qrels = evaluation.read_qrels(folder, split)
    qids = [q for q in qrels if q in queries]
    stemmer = Stemmer.Stemmer(language)
    stop: Any = _STOPWORDS.get(stopwords, stopwords) if stopwords else None
    corpus_tokens = bm25s.tokenize(
        [d.body for d in docs], stopwords=stop, stemmer=stemmer, show_progress=False
    )
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)
    query_tokens = bm25s.tokenize(
        [queries[q] for q in qids], stopwords=stop, stemmer=stemmer, show_progress=False
    )
    k = min(top_k, len(docs))
    results, scores = retriever.retrieve(query_tokens, k=k, show_progress=False)
    run: evaluation.Run = {}
    for row, qid in enumerate(qids):
        run[qid] = [
            (docs[int(i)].doc_id, float(s))
            for i, s in zip(results[row], scores[row], strict=True)
            if s > 0
        ]
    return run, qrels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    parser.add_argument("--language", required=True, help="Snowball stemmer: english, russian")
    parser.add_argument("--stopwords", default=None, help="bm25s stop word list, or none")
    parser.add_argument("--split", default="test")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    stopwords = args.stopwords or args.language
    run, qrels = bare_run(
        args.path,
        args.language,
        None if stopwords == "none" else stopwords,
        args.top_k,
        args.split,
    )
    metrics = evaluation.evaluate(run, qrels)
    result = {
        "dataset": args.path.name,
        "language": args.language,
        "stopwords": stopwords,
        "queries": len(qrels),
        **metrics,
    }
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(
            f"{result['dataset']}: bm25s + PyStemmer({args.language}), stopwords {stopwords}: "
            f"nDCG@10 {metrics['ndcg@10']:.4f}  R@10 {metrics['recall@10']:.4f}  "
            f"R@100 {metrics['recall@100']:.4f}  MRR@10 {metrics['mrr@10']:.4f}"
        )


if __name__ == "__main__":
    main()
