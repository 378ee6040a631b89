"""The evaluation set built in bench/ (tydiqa-ru), its builder, and the evaluation's resumable
vector cache. Plain Python: no database."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from embeddings import evaluation
from embeddings.encoder import Vectors

ROOT = Path(__file__).resolve().parents[2]
TYDIQA_RU = ROOT / "bench" / "datasets" / "tydiqa-ru"


def _bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _source() -> dict[str, object]:
    def article(title: str, context: str, *qas: tuple[str, str, str]) -> dict[str, object]:
        return {
            "title": title,
            "paragraphs": [
                {
                    "context": context,
                    "qas": [
                        {"id": i, "question": q, "answers": [{"text": a}, {"text": a}]}
                        for i, q, a in qas
                    ],
                }
            ],
        }

    return {
        "data": [
            article("Москва", " Москва — столица России. ", ("q3", "Столица России? ", "Москва")),
            article(
                "Волга", "Волга впадает в Каспийское море.", ("q1", "Куда впадает Волга?", "в")
            ),
            article("Москва", " Москва — столица России. ", ("q2", "Какой город столица?", "М")),
        ]
    }


def test_the_committed_set_is_well_formed() -> None:
    docs = list(evaluation.read_corpus(TYDIQA_RU))
    queries = evaluation.read_queries(TYDIQA_RU)
    qrels = evaluation.read_qrels(TYDIQA_RU, "test")
    doc_ids = {d.doc_id for d in docs}
    assert (len(docs), len(doc_ids), len(queries), len(qrels)) == (778, 778, 812, 812)
    assert set(qrels) == set(queries)
    assert all(len(rel) == 1 and set(rel) <= doc_ids for rel in qrels.values())
    assert all(d.title and d.text for d in docs) and all(queries.values())
    assert len({d.text for d in docs}) == len(docs)
    cyrillic = sum(1 for q in queries.values() for ch in q if "а" <= ch.lower() <= "я")
    assert cyrillic > 0.8 * sum(1 for q in queries.values() for ch in q if ch.isalpha())


def test_the_builder_keeps_each_passage_once_and_every_question() -> None:
    built = _bench("build_tydiqa_ru").build(_source())
    assert [(d["_id"], d["title"], d["text"]) for d in built["corpus"]] == [
        ("tydiqa-ru-0001", "Москва", "Москва — столица России."),
        ("tydiqa-ru-0002", "Волга", "Волга впадает в Каспийское море."),
    ]
    assert [(q["_id"], q["text"], q["metadata"]["answers"]) for q in built["queries"]] == [
        ("q3", "Столица России?", ["Москва"]),
        ("q1", "Куда впадает Волга?", ["в"]),
        ("q2", "Какой город столица?", ["М"]),
    ]
    assert built["qrels"] == [
        ("q3", "tydiqa-ru-0001"),
        ("q1", "tydiqa-ru-0002"),
        ("q2", "tydiqa-ru-0001"),
    ]


def test_a_sample_is_deterministic_and_leaves_the_corpus_whole(tmp_path: Path) -> None:
    builder = _bench("build_tydiqa_ru")
    first = builder.build(_source(), questions=2, seed=3)
    assert first == builder.build(_source(), questions=2, seed=3)
    assert len(first["queries"]) == 2 and first["corpus"] == builder.build(_source())["corpus"]
    builder.write(tmp_path, first)
    assert evaluation.read_qrels(tmp_path, "test") == {q: {d: 1} for q, d in first["qrels"]}
    rows = [json.loads(line) for line in (tmp_path / "corpus.jsonl").read_text().splitlines()]
    assert [r["_id"] for r in rows] == ["tydiqa-ru-0001", "tydiqa-ru-0002"]


def test_the_vector_cache_resumes_where_a_run_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = _bench("eval_multilingual")
    monkeypatch.setattr(bench, "PART_SIZE", 2)
    encoded: list[str] = []

    def encode(texts: Sequence[str]) -> Vectors:
        encoded.extend(texts)
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)

    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    folder = tmp_path / "set--model"
    full = bench.cached_passage_vectors(texts, encode, folder, lambda _: None)
    assert encoded == texts and full[:, 0].tolist() == [1, 2, 3, 4, 5]
    (folder / "part-00001.npy").unlink()  # the run "stopped" before this part was saved
    encoded.clear()
    again = bench.cached_passage_vectors(texts, encode, folder, lambda _: None)
    assert encoded == ["ccc", "dddd"] and np.array_equal(again, full)
    encoded.clear()
    bench.cached_passage_vectors([*texts[:4], "other"], encode, folder, lambda _: None)
    assert encoded == ["a", "bb", "ccc", "dddd", "other"]  # other texts: nothing reused
