"""The seam: one backend picked by SEARCH_BACKEND, every operation through it, hits hydrated in
one query, and one table of encoders."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from documents import retrieval
from documents.models import ChunkMetadata
from documents.models import Encoder as EncoderChoice
from documents.retrieval import backend
from documents.retrieval.hits import hits_hydrate
from documents.retrieval.tests.factories import make_document
from embeddings.hybrid import Hit

pytestmark = pytest.mark.django_db


def test_the_setting_picks_the_backend_and_refuses_an_unknown_one(settings):
    picked = {"local": backend.LocalBackend, "postgres": backend.PostgresBackend}
    assert isinstance(retrieval.get_backend(), picked[settings.SEARCH_BACKEND])
    settings.SEARCH_BACKEND = "elsewhere"
    with pytest.raises(ImproperlyConfigured, match="elsewhere"):
        retrieval.get_backend()


def test_every_operation_goes_through_the_configured_backend(settings, kb, monkeypatch):
    calls: list[str] = []

    class Recording(backend.LocalBackend):
        def __getattribute__(self, name: str) -> Any:
            if not name.startswith("_"):
                calls.append(name)
            return super().__getattribute__(name)

    monkeypatch.setitem(backend.BACKENDS, "recording", Recording)
    settings.SEARCH_BACKEND = "recording"
    document, chunks = make_document(kb, ["apple pie", "banana bread"])
    retrieval.index_chunks(knowledge_base=kb, chunks=chunks)
    retrieval.search(knowledge_bases=[kb], query="apple")
    retrieval.index_stats(knowledge_base=kb)
    retrieval.rebuild_index(knowledge_base=kb)
    retrieval.remove_document(knowledge_base=kb, document_id=document.pk)
    retrieval.knowledge_base_index_delete(kb_id=kb.pk)
    assert calls == [
        "index_chunks",
        "search",
        "stats",
        "rebuild",
        "remove_document",
        "delete_knowledge_base",
    ]


def test_hits_are_hydrated_in_one_query_with_their_metadata(kb, django_assert_num_queries):
    document, chunks = make_document(
        kb, ["apple pie", "banana bread", "cherry cake"], pages=[1, 2, 3]
    )
    ChunkMetadata.objects.create(chunk=chunks[1], data={"source": "wiki"})
    ranked = [
        Hit(chunks[1].pk, 0.9, dense=0.9),
        Hit(chunks[0].pk, 0.5, keyword=2.0),
        Hit(10**9, 0.1),
    ]

    with django_assert_num_queries(1):
        hits = hits_hydrate(ranked=ranked, top_k=5, fused_scores=True)

    assert [h.chunk_id for h in hits] == [chunks[1].pk, chunks[0].pk]
    assert hits[0].metadata == {"source": "wiki"} and hits[1].metadata == {}
    assert (hits[0].document_id, hits[0].document_title, hits[0].page_start) == (
        document.pk,
        document.title,
        2,
    )
    assert (hits[1].dense_score, hits[1].keyword_score, hits[1].fused_score) == (None, 2.0, 0.5)
    assert hits[0].file_name == document.original_name


def test_the_encoder_table_names_every_choice_once():
    assert sorted(retrieval.ENCODERS) == sorted(EncoderChoice.values)
    assert {row.provider for row in retrieval.ENCODERS.values()} == {"", "gigachat", "yandexgpt"}
    choices = {c["value"]: c for c in retrieval.encoder_choices()}
    assert choices["local"]["configured"] is True
    assert choices["yandex"]["label"] == EncoderChoice.YANDEX.label


def test_the_postgres_backend_refuses_a_database_that_is_not_postgresql(settings):
    """SEARCH_BACKEND=postgres on SQLite fails at start-up (a system check, and the backend
    itself), saying what to set."""
    from django.core import checks
    from django.db import connection

    settings.SEARCH_BACKEND = "postgres"
    errors = [e for e in checks.run_checks() if e.id == "documents.E001"]
    if connection.vendor == "postgresql":
        assert errors == []
        assert isinstance(backend.backend_named("postgres"), backend.PostgresBackend)
        return
    assert len(errors) == 1 and "DATABASE_URL" in (errors[0].hint or "")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        backend.PostgresBackend()
