"""Retrieval metrics on BEIR-layout datasets (``corpus.jsonl``, ``queries.jsonl``,
``qrels/<split>.tsv``), computed as pytrec_eval / BEIR compute them."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

Qrels = dict[str, dict[str, int]]
Run = dict[str, list[tuple[str, float]]]


@dataclass(frozen=True)
class CorpusDoc:
    doc_id: str
    title: str
    text: str

    @property
    def body(self) -> str:
        """What is indexed: title and text, as BEIR and MTEB do."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


def read_corpus(folder: Path) -> Iterator[CorpusDoc]:
    with (folder / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                yield CorpusDoc(str(row["_id"]), row.get("title") or "", row.get("text") or "")


def read_queries(folder: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                queries[str(row["_id"])] = row["text"]
    return queries


def read_qrels(folder: Path, split: str = "test") -> Qrels:
    qrels: Qrels = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader)  # header
        for qid, did, score in reader:
            qrels.setdefault(qid, {})[did] = int(score)
    return qrels


def ndcg_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    dcg = sum(
        relevant.get(d, 0) / math.log2(i + 2)
        for i, d in enumerate(ranking[:k])
        if relevant.get(d, 0) > 0
    )
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted & set(ranking[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranking[:k]):
        if relevant.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, Recall@10, Recall@100 and MRR@10 over the queries of ``qrels`` (a query
    missing from ``run`` scores 0). Ties in ``run`` are ordered as given."""
    totals = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for qid, relevant in qrels.items():
        ranking = [d for d, _ in run.get(qid, [])]
        totals["ndcg@10"] += ndcg_at(ranking, relevant, 10)
        totals["recall@10"] += recall_at(ranking, relevant, 10)
        totals["recall@100"] += recall_at(ranking, relevant, 100)
        totals["mrr@10"] += mrr_at(ranking, relevant, 10)
    n = max(len(qrels), 1)
    return {name: round(value / n, 4) for name, value in totals.items()}


def write_trec_run(out: TextIO, run: Run, tag: str) -> None:
    """``qid Q0 docid rank score tag`` lines; scores strictly decrease within a query so that
    evaluators which re-sort by score (trec_eval, pytrec_eval) keep our order."""
    for qid, ranking in run.items():
        previous = math.inf
        for rank, (doc_id, score) in enumerate(ranking, start=1):
            value = round(score, 9)
            if value >= previous:
                value = round(previous - 1e-9, 9)
            previous = value
            out.write(f"{qid} Q0 {doc_id} {rank} {value:.9f} {tag}\n")
