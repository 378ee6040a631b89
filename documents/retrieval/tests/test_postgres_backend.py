"""The postgres search backend on a real PostgreSQL with pgvector (``make test-pgvector``): the
same answers as the local backend on one corpus, filters, determinism, another dimension,
rebuilding from the stored vectors without encoding, removal, and no half document after a write
that dies. Both backends run side by side here: the local one's files and the postgres rows are
built from the same chunk rows."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from core.errors import InvalidInput
from documents import retrieval
from documents.models import Chunk, FileType
from documents.models import Encoder as EncoderChoice
from documents.retrieval import postgres, postgres_schema, postgres_search
from documents.retrieval.backend import backend_named
from documents.retrieval.tests.factories import make_document, make_kb
from embeddings.encoder import FakeEncoder

pytestmark = [pytest.mark.django_db, pytest.mark.pgvector]

ENGLISH = [
    "The river Rhine starts in the Alps and runs to the North Sea, crossing Germany.",
    "Apple pie is baked with apples, sugar, cinnamon and butter.",
    "The Apollo 8 mission orbited the Moon in December 1968.",
    "Banana bread needs ripe bananas, flour and eggs.",
    "Rivers carry sediment to the sea and build deltas.",
    "The Moon landing of Apollo 11 was in July 1969.",
    "Butter and sugar are creamed together for a cake.",
    "Germany borders France, Poland and the Netherlands.",
]
RUSSIAN = [
    "Волга впадает в Каспийское море и является самой длинной рекой Европы.",
    "Пирог с яблоками пекут с сахаром, корицей и сливочным маслом.",
    "Москва стоит на реке Москве, притоке Оки.",
    "Банановый хлеб готовят из спелых бананов, муки и яиц.",
    "Реки несут наносы к морю и образуют дельты.",
    "Экипаж Аполлона 8 облетел Луну в декабре 1968 года.",
]
QUERIES = [
    "river sea",
    "apple pie with cinnamon",
    "Apollo Moon mission",
    "bananas flour",
    "Germany",
    "реки и моря",
    "пирог с яблоками",
    "банановый хлеб",
    "Луна",
]
LOCAL = "local"
PG = "postgres"


def _corpus(kb: Any) -> tuple[Any, Any]:
    english, _ = make_document(kb, ENGLISH, title="english", file_type=FileType.TXT)
    russian, _ = make_document(kb, RUSSIAN, title="russian", file_type=FileType.MARKDOWN)
    return english, russian


def _index_both(kb: Any) -> None:
    """Encode once (postgres), then the local backend's files from the stored vectors."""
    backend_named(PG).index_chunks(
        knowledge_base=kb,
        chunks=Chunk.objects.filter(knowledge_base=kb).order_by("pk"),
        batch_size=5,
    )
    backend_named(LOCAL).rebuild(knowledge_base=kb)


def _search(name: str, kbs: list[Any], query: str, **options: Any) -> retrieval.SearchResult:
    arguments: dict[str, Any] = {
        "mode": "hybrid",
        "top_k": 10,
        "min_score": None,
        "dense_weight": None,
        "keyword_weight": None,
        "document_ids": None,
        "file_types": None,
        "candidates": retrieval.CANDIDATES,
        "query_vector": None,
        "fusion": "convex",
    }
    arguments.update(options)
    return backend_named(name).search(knowledge_bases=kbs, query=query, **arguments)


def _ranked(result: retrieval.SearchResult) -> list[tuple[int, float]]:
    return [(h.chunk_id, h.score) for h in result.hits]


def test_the_lexemes_are_the_local_tokenizers_on_plain_words():
    """The keyword side's tokens: PostgreSQL's ``russian`` configuration stems Cyrillic words
    with the Russian Snowball stemmer and ASCII ones with the English one, as the local
    tokenizer does (both drop the same Russian stop words)."""
    text = "Rivers carry sediment; реки несут наносы к морю"
    assert set(postgres_search.keyword_lexemes(text)) == set(retrieval.local.tokenize(text))


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
@pytest.mark.parametrize("fusion", ["convex", "rrf"])
def test_same_hits_as_the_local_backend(kb, mode, fusion):
    """Same order, same scores (within 1e-5: float32 sums in another order; BM25 is summed
    in float32 locally, in float8 here), same breakdown. The corpus's words are in both stop
    word lists or in neither (PostgreSQL's English list has 127 words, Lucene's 33: "from",
    "through", "what"... are stop words only here) and none is hyphenated ("covid-19" is
    "covid", "-19" here), so the keyword statistics are the same."""
    _corpus(kb)
    _index_both(kb)
    for query in QUERIES:
        local = _search(LOCAL, [kb], query, mode=mode, fusion=fusion)
        pg = _search(PG, [kb], query, mode=mode, fusion=fusion)
        assert [h.chunk_id for h in pg.hits] == [h.chunk_id for h in local.hits], query
        assert local.hits, query
        for a, b in zip(local.hits, pg.hits, strict=True):
            assert b.score == pytest.approx(a.score, rel=1e-5, abs=1e-5)
            for side in ("dense_score", "keyword_score"):
                assert (getattr(a, side) is None) == (getattr(b, side) is None)
                if getattr(a, side) is not None:
                    assert getattr(b, side) == pytest.approx(getattr(a, side), rel=1e-5)
        assert (pg.dense_weight, pg.keyword_weight) == (local.dense_weight, local.keyword_weight)
        assert pg.notes == local.notes


def test_the_language_rule_is_the_local_backends(kb):
    """A Russian query on an encoder that knows only English: the dense weight goes to 0 on
    both backends, from the same token counts."""

    class EnglishOnly(FakeEncoder):
        languages = frozenset({"en"})

    with retrieval.use_encoder(EnglishOnly()):
        _corpus(kb)
        _index_both(kb)
        local = _search(LOCAL, [kb], "пирог с яблоками")
        pg = _search(PG, [kb], "пирог с яблоками")
    assert pg.dense_weight == local.dense_weight == 0.0
    assert pg.notes == local.notes and pg.notes
    assert [h.chunk_id for h in pg.hits] == [h.chunk_id for h in local.hits]
    assert [h.score for h in pg.hits] == pytest.approx([h.score for h in local.hits], rel=1e-5)


def test_filters_min_score_and_top_k_are_the_local_backends(kb):
    english, russian = _corpus(kb)
    _index_both(kb)
    cases: list[dict[str, Any]] = [
        {"document_ids": [russian.pk]},
        {"document_ids": [english.pk], "mode": "keyword"},
        {"file_types": [FileType.MARKDOWN], "mode": "dense"},
        {"file_types": [FileType.TXT, FileType.MARKDOWN]},
        {"document_ids": []},
        {"min_score": 0.5},
        {"top_k": 2, "mode": "dense"},
    ]
    for options in cases:
        local = _search(LOCAL, [kb], "реки и моря river sea", **options)
        pg = _search(PG, [kb], "реки и моря river sea", **options)
        assert [h.chunk_id for h in pg.hits] == [h.chunk_id for h in local.hits], options
    only_russian = _search(PG, [kb], "river sea реки", document_ids=[russian.pk])
    assert only_russian.hits and {h.document_id for h in only_russian.hits} == {russian.pk}
    markdown = _search(PG, [kb], "river sea", mode="dense", file_types=[FileType.MARKDOWN])
    assert {h.file_type for h in markdown.hits} == {FileType.MARKDOWN}
    assert len(_search(PG, [kb], "river", mode="dense", top_k=2).hits) == 2
    assert all(h.score >= 0.5 for h in _search(PG, [kb], "river sea", min_score=0.5).hits)


def test_ties_are_broken_by_chunk_id_and_results_repeat(kb):
    make_document(kb, ["same words here"] * 4 + ["other words"], title="twins")
    backend_named(PG).index_chunks(
        knowledge_base=kb, chunks=Chunk.objects.filter(knowledge_base=kb), batch_size=64
    )
    for mode in ("dense", "keyword", "hybrid"):
        first = _search(PG, [kb], "same words", mode=mode)
        ids = [h.chunk_id for h in first.hits[:4]]
        assert ids == sorted(ids), mode
        assert len({h.score for h in first.hits[:4]}) == 1, mode
        for _ in range(3):
            assert _ranked(_search(PG, [kb], "same words", mode=mode)) == _ranked(first)


def test_knowledge_bases_of_two_dimensions_are_searched_together(alice, kb):
    """A knowledge base whose encoder gives 256-d vectors gets its own table; a search of both
    knowledge bases embeds the query once per encoder, as the local backend does."""

    class Small(FakeEncoder):
        name = "fake-hashing-256"

    small = make_kb(alice, "Small", encoder=EncoderChoice.MULTILINGUAL)
    kb.encoder = EncoderChoice.LOCAL
    kb.save(update_fields=["encoder"])
    with retrieval.use_encoder(Small(256), choice=EncoderChoice.MULTILINGUAL):
        make_document(kb, ENGLISH[:4], title="big")
        make_document(small, ENGLISH[4:], title="small")
        for base in (kb, small):
            _index_both(base)
        assert retrieval.index_stats(knowledge_base=small).dimension == 256
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM raggen_search_vec_256 WHERE kb_id = %s", [small.pk]
            )
            assert cursor.fetchone()[0] == 4
        for mode in ("dense", "keyword", "hybrid"):
            local = _search(LOCAL, [kb, small], "river sea Moon", mode=mode)
            pg = _search(PG, [kb, small], "river sea Moon", mode=mode)
            assert [h.chunk_id for h in pg.hits] == [h.chunk_id for h in local.hits], mode
            assert {h.knowledge_base_id for h in pg.hits} == {kb.pk, small.pk}
        with pytest.raises(InvalidInput, match="256-dimensional"):
            _search(PG, [small], "", mode="dense", query_vector=[1.0] * 384)


def test_rebuild_index_backend_postgres_fills_it_from_stored_vectors_without_encoding(
    kb, fake_encoder, monkeypatch
):
    """The switch from local to postgres is one command, and it encodes nothing."""
    _corpus(kb)
    backend_named(LOCAL).index_chunks(
        knowledge_base=kb, chunks=Chunk.objects.filter(knowledge_base=kb), batch_size=64
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM raggen_search_kb")
    assert backend_named(PG).stale_reason(knowledge_base=kb) == "missing"

    def no_encoding(texts: Any) -> Any:
        raise AssertionError(f"encoded {len(texts)} texts")

    monkeypatch.setattr(fake_encoder, "encode", no_encoding)
    out = io.StringIO()
    call_command("rebuild_index", "--backend", "postgres", stdout=out)
    assert f"knowledge base {kb.pk}" in out.getvalue()
    monkeypatch.undo()
    assert backend_named(PG).stale_reason(knowledge_base=kb) is None
    stats = backend_named(PG).stats(knowledge_base=kb)
    assert stats.count == stats.database_count == len(ENGLISH) + len(RUSSIAN)
    for mode in ("dense", "keyword", "hybrid"):
        assert [h.chunk_id for h in _search(PG, [kb], "river sea", mode=mode).hits] == [
            h.chunk_id for h in _search(LOCAL, [kb], "river sea", mode=mode).hits
        ]


def test_removed_chunks_and_documents_are_not_found(kb):
    english, russian = _corpus(kb)
    _index_both(kb)
    assert retrieval.remove_document(knowledge_base=kb, document_id=english.pk) == len(ENGLISH)
    result = _search(PG, [kb], "river sea Rhine реки")
    assert result.hits and {h.document_id for h in result.hits} == {russian.pk}
    first = result.hits[0].chunk_id
    retrieval.remove_chunks(knowledge_base=kb, chunk_ids=[first])
    assert first not in [h.chunk_id for h in _search(PG, [kb], "river sea Rhine реки").hits]
    assert backend_named(PG).stats(knowledge_base=kb).count == len(RUSSIAN) - 1
    retrieval.knowledge_base_index_delete(kb_id=kb.pk)
    assert backend_named(PG).stats(knowledge_base=kb).count == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM raggen_search_chunk WHERE kb_id = %s", [kb.pk])
        assert cursor.fetchone()[0] == 0


def test_a_write_that_dies_midway_leaves_nothing_of_the_document_searchable(kb, monkeypatch):
    """The rows of a document are written in parts; the second part fails (a worker killed,
    the connection lost): the transaction rolls back, so the first part is not searchable
    either, and the document that was there before is untouched."""
    before, _ = make_document(kb, ["an earlier document about rivers"], title="before")
    retrieval.index_chunks(knowledge_base=kb, chunks=Chunk.objects.filter(document=before))
    _document, chunks = make_document(kb, ENGLISH, title="dies")
    monkeypatch.setattr(retrieval.local, "REBUILD_BATCH", 3)
    real = postgres._insert_rows
    written: list[int] = []

    def dies_on_the_second_part(kb_id: int, dimension: int, rows: Any) -> None:
        if written:
            raise ConnectionError("worker killed")
        real(kb_id, dimension, rows)
        written.extend(r[0] for r in rows)

    monkeypatch.setattr(postgres, "_insert_rows", dies_on_the_second_part)
    with pytest.raises(ConnectionError):
        retrieval.index_chunks(knowledge_base=kb, chunks=chunks)
    assert len(written) == 3
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM raggen_search_chunk WHERE chunk_id = ANY(%s)",
            [[c.pk for c in chunks]],
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT count(*) FROM raggen_search_vec_384 WHERE chunk_id = ANY(%s)",
            [[c.pk for c in chunks]],
        )
        assert cursor.fetchone()[0] == 0
    for mode in ("dense", "keyword", "hybrid"):
        hits = _search(PG, [kb], "river Rhine Alps sea", mode=mode).hits
        assert {h.document_id for h in hits} == {before.pk}, mode
    assert backend_named(PG).stats(knowledge_base=kb).count == 1
    monkeypatch.undo()
    retrieval.index_chunks(knowledge_base=kb, chunks=chunks)
    assert backend_named(PG).stats(knowledge_base=kb).count == 1 + len(ENGLISH)


def test_hnsw_and_exact_search_agree_on_a_small_corpus(kb):
    """On a table this small the planner scans exactly; without the other ways (the test's
    transaction rolls the DDL back) the HNSW index answers, with the knowledge base's filter
    applied by an iterative scan, and finds the exact top 10."""
    _corpus(kb)
    _index_both(kb)
    encoder = FakeEncoder()
    vectors = [encoder.encode([query])[0] for query in QUERIES]
    exact = [postgres_search.nearest(kb.pk, 384, q, 10, None, exact=True) for q in vectors]
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX raggen_search_vec_384_kb")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = on")
        cursor.execute(
            "EXPLAIN SELECT chunk_id FROM raggen_search_vec_384 WHERE kb_id = %s "
            "ORDER BY embedding <#> %s::vector LIMIT 10",
            [kb.pk, postgres_schema.vector_literal(vectors[0])],
        )
        assert "raggen_search_vec_384_hnsw" in str(cursor.fetchall())
    for query, q, expected in zip(QUERIES, vectors, exact, strict=True):
        approximate = postgres_search.nearest(kb.pk, 384, q, 10, None)
        assert [i for i, _ in approximate] == [i for i, _ in expected], query
        assert [s for _, s in approximate] == pytest.approx([s for _, s in expected])


def test_the_migration_created_the_extension_and_the_static_tables():
    """Before any write: documents/0008 ran on PostgreSQL with SEARCH_BACKEND=postgres."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone()[0].startswith("0.8")
        cursor.execute(
            "SELECT to_regclass('raggen_search_kb') IS NOT NULL, "
            "to_regclass('raggen_search_chunk') IS NOT NULL, "
            "to_regclass('raggen_search_chunk_tsv') IS NOT NULL"
        )
        assert cursor.fetchone() == (True, True, True)
