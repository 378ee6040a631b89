"""Knowledge bases embedded by a provider (GigaChat ``Embeddings``, Yandex ``text-search-*``)
against the loopback fakes: through the API, the real ingestion and the real index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from documents import retrieval as services
from documents.models import CachedEmbedding, Chunk, Document, DocumentStatus, KnowledgeBase
from providers.fakes import GigaChatFake, YandexFake
from providers.gigachat.encoder import GigaChatEncoder

pytestmark = pytest.mark.django_db(transaction=True)

# Three paragraphs on three subjects; each becomes one chunk (max_chunk_tokens=24).
HANDBOOK = """Отпуск оформляется заявлением за две недели. Ежегодный оплачиваемый отпуск составляет двадцать восемь календарных дней.

Командировка согласуется с руководителем заранее. Суточные в командировке выплачиваются за каждый день поездки.

Пропуск в офис выдаёт служба безопасности на первом этаже. Потерянный пропуск нужно сразу заблокировать.
"""  # noqa: E501
VACATION_QUESTION = "сколько дней ежегодный оплачиваемый отпуск"
EMBEDDINGS = "/api/v1/embeddings"
TEXT_EMBEDDING = "/foundationModels/v1/textEmbedding"


@pytest.fixture
def gigachat(settings: Any) -> Iterator[GigaChatFake]:
    with GigaChatFake() as fake:
        settings.GIGACHAT_CREDENTIALS = fake.credentials
        settings.GIGACHAT_AUTH_URL = fake.auth_url
        settings.GIGACHAT_BASE_URL = fake.base_url
        settings.GIGACHAT_SCOPE = "GIGACHAT_API_PERS"
        settings.LLM_MAX_RETRIES = 0
        yield fake


@pytest.fixture
def yandex(settings: Any) -> Iterator[YandexFake]:
    with YandexFake() as fake:
        settings.YANDEX_API_KEY = fake.api_key
        settings.YANDEX_IAM_TOKEN = ""
        settings.YANDEX_FOLDER_ID = fake.folder_id
        settings.YANDEX_BASE_URL = fake.url
        settings.LLM_MAX_RETRIES = 0
        yield fake


def _create(client: Any, **fields: Any) -> Any:
    body = {"name": "Handbook", "max_chunk_tokens": 24, "overlap_tokens": 0, **fields}
    return client.post("/api/v1/knowledge-bases", body, content_type="application/json")


def _upload(client: Any, kb_id: int, text: str = HANDBOOK) -> Document:
    response = client.post(
        f"/api/v1/knowledge-bases/{kb_id}/documents",
        {"files": [SimpleUploadedFile("handbook.txt", text.encode())]},
    )
    assert response.status_code == 201, response.content
    return Document.objects.get(pk=response.json()["documents"][0]["document"]["id"])


def _search(client: Any, kb_id: int, query: str, mode: str = "dense") -> Any:
    response = client.post(
        "/api/v1/vectors/search",
        {"knowledge_base_ids": [kb_id], "query": query, "mode": mode, "top_k": 3},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def _current(kb_id: int) -> Document:
    return Document.objects.get(knowledge_base_id=kb_id, is_current=True)


def test_a_gigachat_knowledge_base_is_indexed_in_1024_d_and_found_through_gigachat(
    alice_client: Any, gigachat: GigaChatFake
) -> None:
    created = _create(alice_client, encoder="gigachat")
    assert created.status_code == 201, created.content
    kb_id = created.json()["id"]
    assert created.json()["encoder"] == "gigachat"

    document = _upload(alice_client, kb_id)
    document.refresh_from_db()
    kb = KnowledgeBase.objects.get(pk=kb_id)

    assert document.status == DocumentStatus.INDEXED, document.failure_reason
    assert document.chunk_count == 3
    assert (kb.embedding_model, kb.embedding_dimension) == ("gigachat/Embeddings", 1024)
    vectors = [np.frombuffer(bytes(c.vector or b""), dtype=np.float32) for c in kb.chunks.all()]
    assert [v.shape for v in vectors] == [(1024,)] * 3
    assert services.index_stats(knowledge_base=kb).dimension == 1024
    calls = [r.json() for r in gigachat.requests_to(EMBEDDINGS)]
    assert sum(len(c["input"]) for c in calls) == 3
    assert {c["model"] for c in calls} == {"Embeddings"}

    dense = _search(alice_client, kb_id, VACATION_QUESTION)
    assert "двадцать восемь" in dense["hits"][0]["text"]
    # The question itself was embedded by GigaChat, as one more /embeddings call.
    assert gigachat.requests_to(EMBEDDINGS)[-1].json()["input"] == [VACATION_QUESTION]

    before = len(gigachat.requests_to(EMBEDDINGS))
    hybrid = _search(alice_client, kb_id, "суточные командировка поездки", mode="hybrid")
    assert "Суточные" in hybrid["hits"][0]["text"]
    assert hybrid["hits"][0]["scores"]["dense"] is not None
    assert gigachat.requests_to(EMBEDDINGS)[before].json()["input"] == [
        "суточные командировка поездки"
    ]


def test_a_yandex_knowledge_base_embeds_chunks_with_the_doc_model_and_questions_with_the_query_model(  # noqa: E501
    alice_client: Any, yandex: YandexFake
) -> None:
    kb_id = _create(alice_client, encoder="yandex").json()["id"]

    document = _upload(alice_client, kb_id)
    document.refresh_from_db()
    kb = KnowledgeBase.objects.get(pk=kb_id)
    assert document.status == DocumentStatus.INDEXED, document.failure_reason
    assert (kb.embedding_model, kb.embedding_dimension) == ("yandex/text-search", 256)
    chunk_texts = {c.text for c in kb.chunks.all()}
    sent = [r.json() for r in yandex.requests_to(TEXT_EMBEDDING)]
    folder = yandex.folder_id
    # One text per request, each chunk (heading context adds nothing to a plain TXT).
    assert {b["text"] for b in sent} == chunk_texts and len(sent) == 3
    assert {b["modelUri"] for b in sent} == {f"emb://{folder}/text-search-doc/latest"}

    hits = _search(alice_client, kb_id, VACATION_QUESTION)["hits"]

    assert "двадцать восемь" in hits[0]["text"]
    question = yandex.requests_to(TEXT_EMBEDDING)[-1].json()
    assert question == {
        "modelUri": f"emb://{folder}/text-search-query/latest",
        "text": VACATION_QUESTION,
    }
    assert len(hits[0]["text"]) and services.index_stats(knowledge_base=kb).dimension == 256


def test_switching_a_knowledge_base_from_local_to_gigachat_reindexes_it_in_the_new_dimension(
    alice_client: Any, gigachat: GigaChatFake
) -> None:
    kb_id = _create(alice_client, encoder="local").json()["id"]
    _upload(alice_client, kb_id)
    kb = KnowledgeBase.objects.get(pk=kb_id)
    assert (kb.encoder, kb.embedding_dimension) == ("local", 384)  # the test's fake local model
    assert "двадцать восемь" in _search(alice_client, kb_id, VACATION_QUESTION)["hits"][0]["text"]

    response = alice_client.patch(
        f"/api/v1/knowledge-bases/{kb_id}", {"encoder": "gigachat"}, content_type="application/json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["reindexing"] is True
    kb.refresh_from_db()
    current = _current(kb_id)
    assert current.status == DocumentStatus.INDEXED and current.version == 1
    assert Document.objects.filter(knowledge_base_id=kb_id).count() == 1  # the old one swapped out
    assert (kb.encoder, kb.embedding_model, kb.embedding_dimension) == (
        "gigachat",
        "gigachat/Embeddings",
        1024,
    )
    stats = services.index_stats(knowledge_base=kb)
    assert (stats.model, stats.dimension, stats.count) == ("gigachat/Embeddings", 1024, 3)
    assert {len(bytes(c.vector or b"")) for c in Chunk.objects.filter(knowledge_base_id=kb_id)} == {
        4096
    }
    result = _search(alice_client, kb_id, VACATION_QUESTION)
    assert "двадцать восемь" in result["hits"][0]["text"]
    assert result["notes"] == []
    # Each encoder's vectors are cached under its own model: never handed to the other.
    dims = dict(CachedEmbedding.objects.values_list("model", "dimension").distinct())
    assert dims == {"fake-hashing-384": 384, "gigachat/Embeddings": 1024}


def test_switching_back_to_local_reindexes_again(alice_client: Any, gigachat: GigaChatFake) -> None:
    kb_id = _create(alice_client, encoder="gigachat").json()["id"]
    _upload(alice_client, kb_id)

    response = alice_client.patch(
        f"/api/v1/knowledge-bases/{kb_id}", {"encoder": "local"}, content_type="application/json"
    )

    assert response.json()["reindexing"] is True
    kb = KnowledgeBase.objects.get(pk=kb_id)
    assert (kb.embedding_model, kb.embedding_dimension) == ("fake-hashing-384", 384)
    assert services.index_stats(knowledge_base=kb).dimension == 384
    assert "двадцать восемь" in _search(alice_client, kb_id, VACATION_QUESTION)["hits"][0]["text"]


@pytest.mark.parametrize(
    ("encoder", "variable", "label"),
    [("gigachat", "GIGACHAT_CREDENTIALS", "GigaChat"), ("yandex", "YANDEX_FOLDER_ID", "Yandex")],
)
def test_an_unconfigured_provider_is_a_400_on_create_and_on_update(
    alice_client: Any, settings: Any, encoder: str, variable: str, label: str
) -> None:
    settings.GIGACHAT_CREDENTIALS = ""
    settings.YANDEX_API_KEY = ""
    settings.YANDEX_IAM_TOKEN = ""
    settings.YANDEX_FOLDER_ID = ""

    created = _create(alice_client, encoder=encoder)

    assert created.status_code == 400
    detail = created.json()["detail"]
    assert detail.startswith(f"{label} is not configured: set ") and variable in detail
    assert not KnowledgeBase.objects.exists()

    kb_id = _create(alice_client).json()["id"]
    updated = alice_client.patch(
        f"/api/v1/knowledge-bases/{kb_id}",
        {"encoder": encoder, "description": "x"},
        content_type="application/json",
    )
    assert updated.status_code == 400 and updated.json()["detail"] == detail
    kb = KnowledgeBase.objects.get(pk=kb_id)
    assert (kb.encoder, kb.description) == ("multilingual", "")  # the default, kept


def test_an_unknown_encoder_is_a_422(alice_client: Any) -> None:
    response = _create(alice_client, encoder="word2vec")
    assert response.status_code == 422
    assert "encoder" in response.content.decode()


def test_a_rejected_gigachat_key_fails_the_document_with_the_reason(
    alice_client: Any, gigachat: GigaChatFake, settings: Any
) -> None:
    kb_id = _create(alice_client, encoder="gigachat").json()["id"]
    settings.GIGACHAT_CREDENTIALS = "bm9wZTpub3Bl"  # a well-formed key the server does not know

    document = _upload(alice_client, kb_id)

    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED
    assert document.attempts == 1  # a wrong key is not retried
    assert document.failure_reason.startswith("GigaChat embeddings failed: ")
    assert "credentials" in document.failure_reason
    assert "GIGACHAT_CREDENTIALS" in document.failure_reason
    assert not Chunk.objects.filter(document=document).exists()
    assert gigachat.oauth_calls >= 1 and not gigachat.requests_to(EMBEDDINGS)


def test_an_unavailable_provider_is_retried_by_ingestion_and_then_indexes(
    alice_client: Any, gigachat: GigaChatFake
) -> None:
    kb_id = _create(alice_client, encoder="gigachat").json()["id"]
    gigachat.fail(503, {"status": 503, "message": "Service Unavailable"}, path=EMBEDDINGS)

    document = _upload(alice_client, kb_id)

    document.refresh_from_db()
    assert document.status == DocumentStatus.INDEXED, document.failure_reason
    assert document.attempts == 2
    assert len(gigachat.requests_to(EMBEDDINGS)) == 2  # the failed call and the retried one


def test_a_provider_down_for_every_attempt_fails_the_document_saying_so(
    alice_client: Any, gigachat: GigaChatFake, settings: Any
) -> None:
    kb_id = _create(alice_client, encoder="gigachat").json()["id"]
    gigachat.fail(503, {"status": 503, "message": "Service Unavailable"}, path=EMBEDDINGS, times=9)

    document = _upload(alice_client, kb_id)

    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED
    assert document.attempts == settings.INGEST_MAX_ATTEMPTS
    assert document.failure_reason.startswith("GigaChat embeddings failed: ")
    assert f"tried {settings.INGEST_MAX_ATTEMPTS} times" in document.failure_reason


def test_a_provider_failing_at_search_time_leaves_the_keyword_side_answering(
    alice_client: Any, gigachat: GigaChatFake
) -> None:
    kb_id = _create(alice_client, encoder="gigachat").json()["id"]
    _upload(alice_client, kb_id)
    gigachat.fail(503, {"status": 503, "message": "Service Unavailable"}, path=EMBEDDINGS, times=2)

    hybrid = _search(alice_client, kb_id, "суточные командировка", mode="hybrid")
    dense = alice_client.post(
        "/api/v1/vectors/search",
        {"knowledge_base_ids": [kb_id], "query": "суточные командировка", "mode": "dense"},
        content_type="application/json",
    )

    assert "Суточные" in hybrid["hits"][0]["text"]
    assert any("GigaChat embeddings failed" in note for note in hybrid["notes"])
    assert dense.status_code == 503
    assert dense.json()["detail"].startswith("GigaChat embeddings failed: ")


def test_gigachat_batches_stay_within_the_text_and_character_limits(
    gigachat: GigaChatFake,
) -> None:
    texts = [f"текст номер {i} " * 5 for i in range(200)]
    encoder = GigaChatEncoder(
        base_url=gigachat.base_url,
        auth_url=gigachat.auth_url,
        credentials=gigachat.credentials,
        batch_size=500,  # more than the API takes: kept to 90
        max_batch_chars=2000,
    )

    vectors = encoder.encode(texts)

    sizes = [r.json()["input"] for r in gigachat.requests_to(EMBEDDINGS)]
    assert vectors.shape == (200, 1024)
    assert all(len(batch) <= 90 and sum(map(len, batch)) <= 2000 for batch in sizes)
    assert [t for batch in sizes for t in batch] == texts
    assert np.allclose(vectors[7], encoder.encode([texts[7]])[0], atol=1e-6)


def test_the_knowledge_base_forms_offer_only_configured_provider_encoders(
    alice_client: Any, gigachat: GigaChatFake, settings: Any
) -> None:
    settings.YANDEX_API_KEY = settings.YANDEX_IAM_TOKEN = settings.YANDEX_FOLDER_ID = ""
    kb_id = _create(alice_client, encoder="gigachat").json()["id"]

    create_form = alice_client.get("/kb/").content.decode()
    settings_form = alice_client.get(f"/kb/{kb_id}/").content.decode()

    assert '<select id="new-encoder" name="encoder"' in create_form
    assert '<option value="local" >' in create_form
    assert '<option value="gigachat" >' in create_form
    assert '<option value="yandex" disabled>' in create_form
    assert '<option value="gigachat" selected>' in settings_form
