from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from documents import retrieval as services
from documents.retrieval.tests.factories import make_kb

pytestmark = pytest.mark.django_db


def _post(client: Any, path: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/v1{path}", body, content_type="application/json")


def test_embed_returns_one_normalised_vector_per_text(alice_client):
    response = _post(alice_client, "/vectors/embed", {"texts": ["hello", "привет"]})
    assert response.status_code == 200
    body = response.json()
    assert body["dimension"] == 384 and len(body["vectors"]) == 2
    assert abs(sum(x * x for x in body["vectors"][0]) - 1) < 1e-4


@pytest.mark.parametrize(
    ("texts", "status", "words"),
    [
        ([], 422, "at least 1 item"),  # the schema's own bound: a field error
        (["ok", "  "], 422, "Text 1 is empty"),
        (["x"] * (services.MAX_TEXTS_PER_CALL + 1), 413, "Too many texts"),
        (["x" * (services.MAX_TEXT_CHARS + 1)], 413, "characters, at most"),
    ],
)
def test_embed_rejects_bad_input_with_a_clear_message(alice_client, texts, status, words):
    response = _post(alice_client, "/vectors/embed", {"texts": texts})
    assert response.status_code == status
    detail = response.json()["detail"]
    assert words in (detail if isinstance(detail, str) else detail[0]["msg"])


def test_added_texts_are_searchable_with_their_metadata_and_score_breakdown(alice_client, alice):
    kb = make_kb(alice)
    added = _post(
        alice_client,
        f"/vectors/{kb.pk}/texts",
        {
            "texts": ["Договор аренды склада", "Отчёт за квартал"],
            "metadata": [{"page": 4, "src": "a"}, {}],
        },
    )
    assert added.status_code == 201
    chunk_ids = added.json()["chunk_ids"]
    found = _post(
        alice_client, "/vectors/search", {"knowledge_base_ids": [kb.pk], "query": "договоры аренды"}
    )
    assert found.status_code == 200
    hit = found.json()["hits"][0]
    assert hit["chunk_id"] == chunk_ids[0]
    assert hit["page_start"] == 4 and hit["metadata"] == {"page": 4, "src": "a"}
    assert set(hit["scores"]) == {"dense", "keyword", "fused"} and hit["scores"]["keyword"] > 0


def test_deleted_vectors_are_gone_from_search_and_stats(alice_client, alice):
    kb = make_kb(alice)
    ids = _post(alice_client, f"/vectors/{kb.pk}/texts", {"texts": ["apple", "banana"]}).json()[
        "chunk_ids"
    ]
    response = _post(alice_client, f"/vectors/{kb.pk}/delete", {"chunk_ids": [ids[0]]})
    assert response.json() == {"deleted": 1}
    stats = alice_client.get(f"/api/v1/vectors/{kb.pk}/stats").json()
    assert stats["count"] == 1 and stats["database_count"] == 1
    assert stats["model"] == "fake-hashing-384" and stats["dimension"] == 384
    index_type = {
        "local": "IndexIDMap2(FlatIP)",
        "postgres": "pgvector HNSW (vector_ip_ops) + tsvector GIN",
    }
    assert stats["index_type"] == index_type[settings.SEARCH_BACKEND] and stats["file_bytes"] > 0
    assert stats["cache_misses"] == 2


def test_a_query_vector_of_the_wrong_dimension_is_rejected(alice_client, alice):
    kb = make_kb(alice)
    _post(alice_client, f"/vectors/{kb.pk}/texts", {"texts": ["apple"]})
    response = _post(
        alice_client,
        "/vectors/search",
        {"knowledge_base_ids": [kb.pk], "mode": "dense", "vector": [0.1] * 10},
    )
    assert response.status_code == 422
    assert "384" in response.json()["detail"]


def test_another_users_knowledge_base_is_not_found(alice_client, bob):
    foreign = make_kb(bob)
    for response in (
        _post(alice_client, "/vectors/search", {"knowledge_base_ids": [foreign.pk], "query": "x"}),
        _post(alice_client, f"/vectors/{foreign.pk}/texts", {"texts": ["x"]}),
        alice_client.get(f"/api/v1/vectors/{foreign.pk}/stats"),
        alice_client.get("/api/v1/vectors/999999/stats"),
    ):
        assert response.status_code == 404


def test_the_vector_api_needs_a_signed_in_user(client):
    assert _post(client, "/vectors/embed", {"texts": ["x"]}).status_code == 401
