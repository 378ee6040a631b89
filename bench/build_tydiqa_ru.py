"""Build ``tydiqa-ru``: a Russian set of natural questions in BEIR layout, from TyDi QA GoldP.

    python bench/build_tydiqa_ru.py SOURCE_JSON OUT_DIR [--questions N] [--seed 16]

``SOURCE_JSON`` is the Russian part of the TyDi QA GoldP v1.1 dev set in SQuAD layout
(``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers"}]}]}]}``),
e.g. ``language_data/russian/russian_tydiqa_dev.json`` of the public GitHub repository
``sagorbrur/tydiqa-language-specific`` (a per-language split of Google's
``tydiqa-goldp-v1.1-dev.json``). ``OUT_DIR`` receives:

- ``corpus.jsonl``: one passage per distinct ``context`` (``_id`` = ``tydiqa-ru-NNNN`` numbered in
  order of first appearance in the source, ``title`` = the Wikipedia article's title, ``text`` =
  the passage, leading/trailing white space stripped, ``metadata.article`` = the title);
- ``queries.jsonl``: one query per question (``_id`` = TyDi's question id, ``metadata.answers`` =
  the gold answer strings, duplicates removed, in order);
- ``qrels/test.tsv``: question -> the passage it was asked about (score 1).

Every gold passage of the kept questions is in the corpus, and so are the gold passages of the
questions a ``--questions`` sample leaves out: they stay as distractors, so the corpus does not
depend on the sample. The sample (default: every question) is ``random.Random(seed).sample`` over
the question ids sorted, then written in source order. The output is byte-for-byte the same on
every run (sorted keys, ``ensure_ascii=False``, ``\\n`` line ends).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

PREFIX = "tydiqa-ru"


def build(source: dict[str, Any], questions: int = 0, seed: int = 16) -> dict[str, list[Any]]:
    """The three BEIR files' rows: ``corpus``, ``queries``, ``qrels`` (``(qid, doc_id)``)."""
    passage_ids: dict[str, str] = {}
    corpus: list[dict[str, Any]] = []
    rows: list[tuple[dict[str, Any], str]] = []
    for article in source["data"]:
        title = article["title"].strip()
        for paragraph in article["paragraphs"]:
            text = paragraph["context"].strip()
            if text not in passage_ids:
                passage_ids[text] = f"{PREFIX}-{len(passage_ids) + 1:04d}"
                corpus.append(
                    {
                        "_id": passage_ids[text],
                        "title": title,
                        "text": text,
                        "metadata": {"article": title},
                    }
                )
            for qa in paragraph["qas"]:
                answers = list(dict.fromkeys(a["text"] for a in qa["answers"]))
                query = {
                    "_id": qa["id"],
                    "text": qa["question"].strip(),
                    "metadata": {"answers": answers},
                }
                rows.append((query, passage_ids[text]))
    ids = [query["_id"] for query, _ in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("question ids are not unique")
    if questions and questions < len(rows):
        keep = set(random.Random(seed).sample(sorted(ids), questions))
        rows = [row for row in rows if row[0]["_id"] in keep]
    return {
        "corpus": corpus,
        "queries": [query for query, _ in rows],
        "qrels": [(query["_id"], doc_id) for query, doc_id in rows],
    }


def write(out: Path, built: dict[str, list[Any]]) -> None:
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    for name in ("corpus", "queries"):
        with (out / f"{name}.jsonl").open("w", encoding="utf-8", newline="\n") as fh:
            for row in built[name]:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, doc_id in built["qrels"]:
            fh.write(f"{qid}\t{doc_id}\t1\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("source", type=Path, help="russian_tydiqa_dev.json (SQuAD layout)")
    parser.add_argument("out", type=Path, help="output folder (BEIR layout)")
    parser.add_argument("--questions", type=int, default=0, help="sample size (0 = all)")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    with args.source.open(encoding="utf-8") as fh:
        built = build(json.load(fh), args.questions, args.seed)
    write(args.out, built)
    print(f"{args.out}: {len(built['corpus'])} passages, {len(built['queries'])} questions")


if __name__ == "__main__":
    main()
