"""Document vectors: aggregated from chunk vectors by streaming, stored at the end of ingestion,
served by the vector API with a similar-documents search."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from documents import retrieval as services
from documents import services as document_services
from documents.models import Chunk, Document, DocumentStatus
from documents.retrieval import document_vectors
from documents.retrieval.tests.factories import make_document, make_kb
from documents.tests.helpers import DOCS, upload_bytes, upload_path
from embeddings.aggregation import METHODS, RunningAggregate, aggregate

pytestmark = pytest.mark.django_db


def _chunk_vectors(document: Document) -> tuple[np.ndarray, list[int]]:
    rows = list(
        Chunk.objects.filter(document=document)
        .order_by("ordinal")
        .values_list("vector", "token_count")
    )
    vectors = np.stack([np.frombuffer(bytes(v or b""), dtype=np.float32) for v, _ in rows])
    return vectors, [t for _, t in rows]


def _stored(document: Document) -> np.ndarray:
    blob = Document.objects.values_list("vector", flat=True).get(pk=document.pk)
    assert blob is not None
    return np.frombuffer(bytes(blob), dtype=np.float32)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batch", [1, 3, 7, 50])
def test_running_aggregate_over_batches_equals_the_whole_aggregate(method, batch):
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((23, 16)).astype(np.float32)
    lengths = rng.integers(1, 300, size=23).tolist()
    running = RunningAggregate(method)
    for start in range(0, 23, batch):
        running.add(vectors[start : start + batch], lengths=lengths[start : start + batch])
    expected = aggregate(vectors, method, lengths=lengths)
    result = running.result()
    assert result is not None and result.dtype == np.float32
    np.testing.assert_allclose(result, expected, atol=1e-6)
    assert abs(float(np.linalg.norm(result)) - 1) < 1e-5


def test_running_aggregate_rejects_unknown_methods_and_is_empty_until_fed():
    with pytest.raises(ValueError, match="unknown aggregation"):
        RunningAggregate("median")
    assert RunningAggregate("mean").result() is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("method", ["mean", "weighted_position"])
def test_ingestion_stores_the_document_vector_by_the_knowledge_base_aggregation(alice, method):
    kb = document_services.knowledge_base_create(owner=alice, name=f"Handbook {method}")
    kb.aggregation = method
    kb.save(update_fields=["aggregation"])
    document = upload_path(kb, DOCS / "pdf" / "ru" / "synopsis.pdf", alice)
    assert document.status == DocumentStatus.INDEXED, document.failure_reason
    vectors, _ = _chunk_vectors(document)
    assert len(vectors) == document.chunk_count > 1
    np.testing.assert_allclose(_stored(document), aggregate(vectors, method), atol=1e-6)


def test_the_vector_is_computed_in_bounded_batches(kb, monkeypatch):
    kb.aggregation = "weighted_length"
    kb.save(update_fields=["aggregation"])
    texts = [f"paragraph {i} about " + "contracts and deliveries " * (i % 5 + 1) for i in range(9)]
    document, chunks = make_document(kb, texts)
    for i, c in enumerate(chunks):
        Chunk.objects.filter(pk=c.pk).update(token_count=10 + 7 * i)
    services.index_chunks(knowledge_base=kb, chunks=chunks)
    seen: list[int] = []
    original = RunningAggregate.add

    def spy(self: RunningAggregate, vectors: Any, **kwargs: Any) -> None:
        seen.append(len(vectors))
        original(self, vectors, **kwargs)

    monkeypatch.setattr(document_vectors, "BATCH", 4)
    monkeypatch.setattr(RunningAggregate, "add", spy)
    vector = document_vectors.document_vector_compute(document=document)
    assert seen == [4, 4, 1]
    vectors, lengths = _chunk_vectors(document)
    assert lengths == [10 + 7 * i for i in range(9)]
    expected = aggregate(vectors, "weighted_length", lengths=lengths)
    assert vector is not None
    np.testing.assert_allclose(vector, expected, atol=1e-6)
    np.testing.assert_allclose(_stored(document), expected, atol=1e-6)


def _get(client: Any, path: str) -> Any:
    return client.get(f"/api/v1{path}")


def test_api_serves_the_document_vector_and_similar_documents(alice_client, kb):
    contracts, c1 = make_document(kb, ["supply contract terms", "contract payment terms"])
    also, c2 = make_document(kb, ["contract terms of the supply", "payment of the contract"])
    weather, c3 = make_document(kb, ["weather forecast for Moscow", "rain and snow tomorrow"])
    services.index_chunks(knowledge_base=kb, chunks=[*c1, *c2, *c3])
    # Indexed through the vector API's own path (no ingestion run): computed on first request.
    assert Document.objects.get(pk=contracts.pk).vector is None

    response = _get(alice_client, f"/vectors/{kb.pk}/documents/{contracts.pk}/vector")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["dimension"], body["aggregation"]) == (384, "mean")
    assert body["model"] == "fake-hashing-384"
    assert abs(sum(x * x for x in body["vector"]) - 1) < 1e-4
    np.testing.assert_allclose(body["vector"], _stored(contracts), atol=1e-6)

    # The other documents have no vector yet either: the similar search computes them first.
    response = _get(alice_client, f"/vectors/{kb.pk}/documents/{contracts.pk}/similar?top_k=5")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["document_id"] for r in results] == [also.pk, weather.pk]
    assert results[0]["score"] > results[1]["score"]
    assert results[0]["title"] == "doc" and results[0]["file_type"] == "txt"

    response = _get(alice_client, f"/vectors/{kb.pk}/documents/{contracts.pk}/similar?top_k=1")
    assert [r["document_id"] for r in response.json()["results"]] == [also.pk]


def test_api_refuses_foreign_unknown_and_unindexed_documents(alice_client, bob, kb):
    foreign_kb = make_kb(bob)
    foreign, chunks = make_document(foreign_kb, ["secret text"])
    services.index_chunks(knowledge_base=foreign_kb, chunks=chunks)
    assert (
        _get(alice_client, f"/vectors/{foreign_kb.pk}/documents/{foreign.pk}/vector").status_code
        == 404
    )
    # A foreign document id through one's own knowledge base is not found either.
    assert _get(alice_client, f"/vectors/{kb.pk}/documents/{foreign.pk}/vector").status_code == 404
    assert _get(alice_client, f"/vectors/{kb.pk}/documents/999999/similar").status_code == 404
    pending = upload_bytes(kb, "a.txt", b"Some text about contracts.")
    Document.objects.filter(pk=pending.pk).update(status=DocumentStatus.QUEUED, vector=None)
    response = _get(alice_client, f"/vectors/{kb.pk}/documents/{pending.pk}/vector")
    assert response.status_code == 409 and "not indexed" in response.json()["detail"]
    response = _get(alice_client, f"/vectors/{kb.pk}/documents/{pending.pk}/similar?top_k=0")
    assert response.status_code == 422


def test_reembedding_with_another_model_clears_document_vectors_until_asked(alice_client, kb):
    first, c1 = make_document(kb, ["supply contract terms"])
    second, c2 = make_document(kb, ["contract terms of supply"])
    services.index_chunks(knowledge_base=kb, chunks=[*c1, *c2])
    for document in (first, second):
        document_vectors.document_vector_compute(document=document)
    assert Document.objects.filter(vector__isnull=True).count() == 0
    # The knowledge base is recorded as built with another model: rebuilding re-embeds it.
    type(kb).objects.filter(pk=kb.pk).update(embedding_model="old-model")
    kb.refresh_from_db()
    services.rebuild_index(knowledge_base=kb)
    assert Document.objects.filter(knowledge_base=kb, vector__isnull=False).count() == 0
    response = _get(alice_client, f"/vectors/{kb.pk}/documents/{first.pk}/similar")
    assert [r["document_id"] for r in response.json()["results"]] == [second.pk]
    assert Document.objects.filter(knowledge_base=kb, vector__isnull=True).count() == 0
