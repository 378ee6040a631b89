from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings import store
from embeddings.encoder import FakeEncoder
from embeddings.keyword import Tokenizer

tok = Tokenizer()
enc = FakeEncoder(dimension=16)


def _add(index: store.KnowledgeBaseIndex, ids: list[int], texts: list[str]) -> store.Snapshot:
    return index.add(
        np.asarray(ids),
        enc.encode(texts),
        [tok.tokenize(t) for t in texts],
        model="fake",
        dimension=16,
    )


def _dense(snap: store.Snapshot, text: str, k: int = 10, allowed=None) -> list[int]:
    return [i for i, _ in store.dense_search(snap, enc.encode([text])[0], k, allowed)]


def test_added_chunks_are_found_by_their_chunk_ids(tmp_path: Path):
    index = store.KnowledgeBaseIndex(tmp_path / "kb")
    snap = _add(index, [10, 20, 30], ["apple pie", "banana bread", "cherry tart"])
    assert snap.count == 3
    assert _dense(snap, "banana bread", k=1) == [20]


def test_one_query_searches_with_the_given_faiss_threads_and_restores_them(
    tmp_path: Path, monkeypatch
):
    import faiss

    if faiss.omp_get_max_threads() < 2:
        faiss.omp_set_num_threads(2)  # OMP_NUM_THREADS=1 in the environment: start from 2
    snap = _add(store.KnowledgeBaseIndex(tmp_path / "kb"), [1, 2], ["apple pie", "banana"])
    dense = snap.segments[0].segment.dense
    during: list[int] = []
    real_search = dense.search

    def search(*args, **kwargs):
        during.append(faiss.omp_get_max_threads())
        return real_search(*args, **kwargs)

    monkeypatch.setattr(dense, "search", search)
    before = faiss.omp_get_max_threads()
    query = enc.encode(["apple pie"])[0]

    assert [i for i, _ in store.dense_search(snap, query, 1, threads=1)] == [1]
    assert faiss.omp_get_max_threads() == before
    store.dense_search(snap, query, 1)  # 0: left as it is

    assert during == [1, before]


def test_adding_an_id_again_replaces_it_instead_of_duplicating(tmp_path: Path):
    index = store.KnowledgeBaseIndex(tmp_path / "kb")
    _add(index, [1, 2], ["apple", "banana"])
    snap = _add(index, [2], ["cherry"])
    assert snap.count == 2
    assert sorted(_dense(snap, "cherry")) == [1, 2]
    assert _dense(snap, "cherry", k=1) == [2]


def test_removed_chunks_disappear_from_both_sides(tmp_path: Path):
    index = store.KnowledgeBaseIndex(tmp_path / "kb")
    _add(index, [1, 2, 3], ["apple one", "apple two", "apple three"])
    snap = index.remove([2])
    assert sorted(_dense(snap, "apple")) == [1, 3]
    from embeddings import keyword

    assert sorted(i for i, _ in keyword.search(snap.keyword_views(), ["appl"], 10)) == [1, 3]


def test_dense_search_can_be_restricted_to_allowed_ids(tmp_path: Path):
    index = store.KnowledgeBaseIndex(tmp_path / "kb")
    snap = _add(index, [1, 2, 3], ["apple", "banana", "cherry"])
    assert _dense(snap, "apple", allowed=np.asarray([2, 3])) in ([2, 3], [3, 2])


def test_another_process_object_sees_each_new_version(tmp_path: Path):
    writer = store.KnowledgeBaseIndex(tmp_path / "kb")
    reader = store.KnowledgeBaseIndex(tmp_path / "kb")
    assert not reader.snapshot().exists
    _add(writer, [1], ["apple"])
    assert reader.snapshot().count == 1
    _add(writer, [2], ["banana"])
    snap = reader.snapshot()
    assert snap.count == 2 and snap.version == 2


def test_many_small_additions_are_merged_into_few_segments_without_losing_chunks(tmp_path: Path):
    index = store.KnowledgeBaseIndex(tmp_path / "kb", max_segments=4)
    for i in range(1, 21):
        snap = _add(index, [i], [f"word{i} common"])
    assert len(snap.manifest.segments) <= 4
    assert snap.count == 20
    assert sorted(_dense(snap, "common", k=50)) == list(range(1, 21))
    files = {p.name for p in (tmp_path / "kb").iterdir()}
    assert len(files) == 2 + 2 * len(snap.manifest.segments)  # no stale files left


def test_a_corrupt_segment_file_is_reported_as_corrupt(tmp_path: Path):
    _add(store.KnowledgeBaseIndex(tmp_path / "kb"), [1, 2], ["apple", "banana"])
    faiss_file = next((tmp_path / "kb").glob("*.faiss"))
    data = bytearray(faiss_file.read_bytes())
    data[-5] ^= 0xFF
    faiss_file.write_bytes(bytes(data))
    with pytest.raises(store.IndexCorrupt):
        store.KnowledgeBaseIndex(tmp_path / "kb").snapshot()


def test_a_garbled_manifest_is_reported_as_corrupt(tmp_path: Path):
    _add(store.KnowledgeBaseIndex(tmp_path / "kb"), [1], ["apple"])
    (tmp_path / "kb" / "manifest.json").write_text("{not json")
    with pytest.raises(store.IndexCorrupt):
        store.KnowledgeBaseIndex(tmp_path / "kb").snapshot()


def test_vectors_of_another_model_are_refused(tmp_path: Path):
    index = store.KnowledgeBaseIndex(tmp_path / "kb")
    _add(index, [1], ["apple"])
    with pytest.raises(store.ModelMismatch):
        index.add([2], np.zeros((1, 8), np.float32), [["x"]], model="other", dimension=8)


def test_large_segments_use_hnsw_with_the_same_answers_on_easy_queries(tmp_path: Path):
    index = store.KnowledgeBaseIndex(tmp_path / "kb", approximate_threshold=50)
    texts = [f"topic{i} filler words" for i in range(120)]
    snap = _add(index, list(range(1, 121)), texts)
    assert snap.manifest.segments[0].kind == "hnsw"
    assert _dense(snap, "topic7 filler words", k=1) == [8]
    snap = index.remove([8])
    assert 8 not in _dense(snap, "topic7 filler words", k=5)


def test_replace_all_swaps_in_a_new_index_in_one_version(tmp_path: Path):
    index = store.KnowledgeBaseIndex(tmp_path / "kb")
    _add(index, [1], ["old"])
    batches = [
        (np.asarray([5, 6]), enc.encode(["apple", "banana"]), [["appl"], ["banana"]]),
        (np.asarray([7]), enc.encode(["cherry"]), [["cherri"]]),
    ]
    snap = index.replace_all(iter(batches), model="fake", dimension=16)
    assert snap.count == 3 and len(snap.manifest.segments) == 1
    assert sorted(_dense(snap, "x", k=10)) == [5, 6, 7]


def test_dense_ties_come_back_by_chunk_id_and_distinct_scores_best_first(tmp_path: Path):
    index = store.KnowledgeBaseIndex(tmp_path / "kb")
    # Equal vectors (the same text) added in descending id order, and two other texts.
    snap = _add(index, [9, 7, 3, 5, 2], ["same text"] * 3 + ["other words", "more words"])
    query = enc.encode(["same text"])[0]

    ranked = store.dense_search(snap, query, 5)

    assert [i for i, _ in ranked[:3]] == [3, 7, 9]
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True) and scores[0] == scores[2] > scores[3]
    assert sorted(i for i, _ in ranked) == [2, 3, 5, 7, 9]


def test_the_package_exports_every_name_its_callers_use():
    # documents.retrieval, the commands, bench/ and the tests import these from the package.
    used = {
        "KnowledgeBaseIndex",
        "Snapshot",
        "open_index",
        "forget",
        "dense_search",
        "omp_threads",
        "IndexCorrupt",
        "StaleIndex",
        "ModelMismatch",
        "Manifest",
        "MANIFEST",
    }

    assert used <= set(store.__all__)
    assert all(getattr(store, name) is not None for name in store.__all__)
    assert issubclass(store.StaleIndex, store.IndexCorrupt)
