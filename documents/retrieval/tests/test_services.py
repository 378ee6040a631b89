from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.errors import InvalidInput
from documents import retrieval as services
from documents.models import Chunk, FileType
from documents.retrieval import local
from documents.retrieval.tests.factories import make_document, make_kb
from embeddings import store
from embeddings.aggregation import aggregate, aggregation_weights
from embeddings.encoder import FakeEncoder, SentenceTransformerEncoder
from embeddings.model_files import model_name, resolve_model_path

pytestmark = pytest.mark.django_db


def _index(kb: Any, texts: list[str], **kwargs: Any) -> tuple[Any, list[Any]]:
    document, chunks = make_document(kb, texts, **kwargs)
    services.index_chunks(knowledge_base=kb, chunks=chunks)
    return document, chunks


def test_indexing_stores_each_vector_with_its_chunk_and_records_the_model(kb):
    _, chunks = _index(kb, ["Договор поставки оборудования", "Weather in Moscow"])
    kb.refresh_from_db()
    assert (kb.embedding_model, kb.embedding_dimension) == ("fake-hashing-384", 384)
    blob = Chunk.objects.get(pk=chunks[0].pk).vector or b""
    stored = np.frombuffer(bytes(blob), dtype=np.float32)
    np.testing.assert_allclose(stored, FakeEncoder().encode([chunks[0].text])[0])


def test_hybrid_search_returns_text_document_page_and_score_breakdown(kb):
    document, chunks = _index(
        kb, ["Условия договора поставки", "Прогноз погоды", "Оплата по договору"], pages=[1, 2, 3]
    )
    result = services.search(knowledge_bases=[kb], query="договоров", top_k=5)
    assert [h.chunk_id for h in result.hits][:2] == sorted(
        [chunks[0].pk, chunks[2].pk], key=lambda i: [h.chunk_id for h in result.hits].index(i)
    )
    top = result.hits[0]
    assert top.document_id == document.pk and top.document_title == "doc"
    assert top.file_name == document.original_name and top.file_name.startswith("doc.")
    assert top.page_start in (1, 3) and top.text in (chunks[0].text, chunks[2].text)
    assert top.keyword_score is not None and top.keyword_score > 0
    assert top.dense_score is not None and top.fused_score == top.score
    assert 0 < top.score <= 1


@pytest.mark.local_index
def test_a_search_uses_the_search_threads_setting_for_its_vector_search(kb, settings, monkeypatch):
    _index(kb, ["Условия договора поставки", "Weather in Moscow"])
    threads: list[int] = []
    real = store.dense_search

    def dense_search(*args: Any, **kwargs: Any) -> Any:
        threads.append(kwargs["threads"])
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "dense_search", dense_search)
    settings.SEARCH_THREADS = 3

    services.search(knowledge_bases=[kb], query="weather", mode="dense", top_k=1)

    assert threads == [3]


def test_each_mode_ranks_by_its_own_score(kb):
    _index(kb, ["contract signed today", "the weather is fine", "contracts and invoices"])
    for mode in services.MODES:
        hits = services.search(knowledge_bases=[kb], query="contract", mode=mode, top_k=3).hits
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
    keyword_hits = services.search(knowledge_bases=[kb], query="contract", mode="keyword").hits
    assert len(keyword_hits) == 2 and all(h.dense_score is None for h in keyword_hits)


def test_ties_are_broken_by_chunk_id(kb):
    _, chunks = _index(kb, ["same words here", "same words here", "same words here"])
    hits = services.search(knowledge_bases=[kb], query="same words", mode="keyword").hits
    assert [h.chunk_id for h in hits] == sorted(c.pk for c in chunks)


def test_min_score_and_top_k_limit_the_hits(kb):
    _index(kb, [f"apple {i}" for i in range(10)] + ["banana"])
    assert len(services.search(knowledge_bases=[kb], query="apple", top_k=3).hits) == 3
    hits = services.search(knowledge_bases=[kb], query="apple", mode="dense", min_score=0.99).hits
    assert all(h.score >= 0.99 for h in hits)


def test_search_filters_by_document_and_file_type(kb):
    pdf, _ = _index(kb, ["apple report"], title="a", file_type=FileType.PDF)
    txt, _ = _index(kb, ["apple notes"], title="b", file_type=FileType.TXT)
    by_doc = services.search(knowledge_bases=[kb], query="apple", document_ids=[txt.pk]).hits
    by_type = services.search(knowledge_bases=[kb], query="apple", file_types=["pdf"]).hits
    assert {h.document_id for h in by_doc} == {txt.pk}
    assert {h.document_id for h in by_type} == {pdf.pk}


def test_search_spans_several_knowledge_bases(alice, kb):
    other = make_kb(alice, name="Second")
    _index(kb, ["apple from the first"])
    _index(other, ["apple from the second"])
    hits = services.search(knowledge_bases=[kb, other], query="apple").hits
    assert {h.knowledge_base_id for h in hits} == {kb.pk, other.pk}


def test_removed_document_is_no_longer_found(kb):
    gone, _ = _index(kb, ["apple pie"], title="gone")
    kept, _ = _index(kb, ["apple tart"], title="kept")
    assert services.remove_document(knowledge_base=kb, document_id=gone.pk) == 1
    hits = services.search(knowledge_bases=[kb], query="apple").hits
    assert [h.document_id for h in hits] == [kept.pk]


def test_indexing_the_same_chunks_twice_does_not_duplicate_them(kb):
    _, chunks = _index(kb, ["apple", "banana"])
    services.index_chunks(knowledge_base=kb, chunks=chunks)
    assert services.index_stats(knowledge_base=kb).count == 2


def test_same_text_in_two_knowledge_bases_is_encoded_once(alice, kb, fake_encoder):
    _index(kb, ["shared paragraph"])
    _index(make_kb(alice, name="Copy"), ["shared paragraph"])
    assert fake_encoder.texts_encoded == 1
    assert services.index_stats(knowledge_base=kb).cache_hits == 1


def test_a_corrupt_index_file_is_rebuilt_from_the_database_on_the_next_search(kb):
    _, chunks = _index(kb, ["apple pie", "banana bread"])
    folder = local.index_folder(kb.pk)
    for path in folder.glob("*.faiss"):
        path.write_bytes(b"garbage")
    store.forget(folder)  # as a fresh process would
    hits = services.search(knowledge_bases=[kb], query="banana").hits
    assert hits[0].chunk_id == chunks[1].pk
    assert services.index_stats(knowledge_base=kb).count == 2


def test_a_missing_index_folder_is_rebuilt_from_the_database(kb):
    _, chunks = _index(kb, ["apple pie", "banana bread"])
    services.knowledge_base_index_delete(kb_id=kb.pk)
    hits = services.search(knowledge_bases=[kb], query="apple", mode="dense").hits
    assert hits[0].chunk_id == chunks[0].pk


def test_another_model_is_refused_until_the_knowledge_base_is_rebuilt(kb):
    _index(kb, ["apple pie"])
    _, more = make_document(kb, ["banana"], title="more")
    with services.use_encoder(FakeEncoder(dimension=64)):
        with pytest.raises(services.ModelChanged):
            services.index_chunks(knowledge_base=kb, chunks=more)
        result = services.search(knowledge_bases=[kb], query="apple")
        assert "rebuilt" in " ".join(result.notes)  # keyword side still answers
        assert result.hits
        snapshot = local.rebuild_index(knowledge_base=kb)
        assert snapshot.manifest.dimension == 64
        services.index_chunks(knowledge_base=kb, chunks=more)
        # the rebuild already took "more" in
        assert services.index_stats(knowledge_base=kb).count == 2
        assert len(bytes(Chunk.objects.get(pk=more[0].pk).vector or b"")) == 64 * 4


class EnglishOnly(FakeEncoder):
    languages = frozenset({"en"})


def test_an_english_only_encoder_does_not_drag_russian_hybrid_below_keyword(kb):
    texts = ["Договор аренды офиса", "Отчёт по продажам", "Погода в Казани", "Аренда склада"]
    with services.use_encoder(EnglishOnly()):
        _index(kb, texts)
        hybrid = services.search(knowledge_bases=[kb], query="аренда офиса")
        keyword = services.search(knowledge_bases=[kb], query="аренда офиса", mode="keyword")
    assert [h.chunk_id for h in hybrid.hits] == [h.chunk_id for h in keyword.hits]
    assert hybrid.dense_weight < hybrid.keyword_weight
    assert any("does not know ru" in note for note in hybrid.notes)


def test_empty_query_is_rejected(kb):
    with pytest.raises(InvalidInput):
        services.search(knowledge_bases=[kb], query="   ")


def test_indexing_a_long_document_works_in_bounded_batches(kb, fake_encoder):
    _, chunks = make_document(kb, [f"paragraph {i} about topic{i % 7}" for i in range(50)])
    assert services.index_chunks(knowledge_base=kb, chunks=iter(chunks), batch_size=8) == 50
    assert fake_encoder.calls == 7  # one encode call per batch of 8
    assert services.index_stats(knowledge_base=kb).count == 50


def test_mean_and_weighted_aggregation_give_unit_vectors_leaning_to_heavier_paragraphs():
    v = np.eye(3, dtype=np.float32)
    np.testing.assert_allclose(aggregation_weights("mean", 3), [1 / 3] * 3)
    by_length = aggregate(v, "weighted_length", lengths=[1, 1, 8])
    by_position = aggregate(v, "weighted_position", decay=0.5)
    assert abs(np.linalg.norm(by_length) - 1) < 1e-6
    assert by_length.argmax() == 2 and by_position.argmax() == 0
    with pytest.raises(ValueError):
        aggregation_weights("median", 3)


@pytest.mark.slow
def test_with_the_real_model_english_paraphrases_are_found_and_russian_leans_on_keywords(kb):
    real = SentenceTransformerEncoder(resolve_model_path(""), name=model_name(""))
    with services.use_encoder(real):
        _, chunks = _index(
            kb,
            [
                "The tenant pays the rent on the first day of every month.",
                "Photosynthesis converts light into chemical energy in plants.",
                "Договор аренды заключается на один год.",
                "Отчёт по продажам за третий квартал.",
            ],
        )
        dense = services.search(
            knowledge_bases=[kb], query="When is the lease payment due?", mode="dense"
        )
        russian = services.search(knowledge_bases=[kb], query="договоров аренды")
    assert dense.hits[0].chunk_id == chunks[0].pk
    assert russian.hits[0].chunk_id == chunks[2].pk
    assert russian.dense_weight == 0.0 and russian.notes
