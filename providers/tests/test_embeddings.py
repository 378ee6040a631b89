from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from providers.errors import ProviderAuthError, ProviderBadRequest, ProviderNotConfigured
from providers.fakes import GigaChatFake, YandexFake
from providers.gigachat.encoder import GigaChatEncoder
from providers.registry import get_encoder
from providers.tests.conftest import FAST
from providers.yandex.encoder import YandexEncoder

TEXTS = ["Отпуск оформляется заявлением.", "Vacation needs a form.", "Третий текст"]


def _giga(fake: GigaChatFake, **overrides: Any) -> GigaChatEncoder:
    options: dict[str, Any] = {
        "base_url": fake.base_url,
        "auth_url": fake.auth_url,
        "credentials": fake.credentials,
        "http": FAST,
    }
    return GigaChatEncoder(**(options | overrides))


def _yandex(fake: YandexFake, **overrides: Any) -> YandexEncoder:
    options: dict[str, Any] = {
        "base_url": fake.url,
        "folder_id": fake.folder_id,
        "api_key": fake.api_key,
        "http": FAST,
    }
    return YandexEncoder(**(options | overrides))


def test_gigachat_encoder_returns_unit_float32_rows_of_1024(gigachat_fake: GigaChatFake) -> None:
    vectors = _giga(gigachat_fake).encode(TEXTS)

    assert vectors.shape == (3, 1024) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_gigachat_encoder_splits_large_inputs_into_batches_the_api_accepts(
    gigachat_fake: GigaChatFake,
) -> None:
    gigachat_fake.max_embedding_batch = 2

    vectors = _giga(gigachat_fake, batch_size=2).encode(TEXTS)

    assert vectors.shape == (3, 1024)
    assert [len(r.json()["input"]) for r in gigachat_fake.requests_to("/api/v1/embeddings")] == [
        2,
        1,
    ]


def test_gigachat_encoder_rows_depend_only_on_their_text(gigachat_fake: GigaChatFake) -> None:
    encoder = _giga(gigachat_fake)

    together = encoder.encode(TEXTS)
    alone = encoder.encode(TEXTS[1:2])

    assert np.allclose(together[1], alone[0])


def test_gigachat_encoder_refreshes_a_revoked_token_once(gigachat_fake: GigaChatFake) -> None:
    encoder = _giga(gigachat_fake)
    encoder.encode(TEXTS[:1])
    gigachat_fake.revoke_tokens()

    encoder.encode(TEXTS[:1])

    assert gigachat_fake.oauth_calls == 2


def test_gigachat_encoder_with_a_wrong_key_gives_an_auth_error(gigachat_fake: GigaChatFake) -> None:
    with pytest.raises(ProviderAuthError):
        _giga(gigachat_fake, credentials="bm9wZQ==").encode(TEXTS)


def test_yandex_encoder_sends_one_text_per_request_to_the_doc_model(
    yandex_fake: YandexFake,
) -> None:
    vectors = _yandex(yandex_fake).encode(TEXTS)

    sent = yandex_fake.requests_to("/foundationModels/v1/textEmbedding")
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert [r.json()["text"] for r in sent] == TEXTS
    assert sent[0].json()["modelUri"] == "emb://b1gfakefolder/text-search-doc/latest"


def test_yandex_query_encoder_uses_the_query_model_in_the_same_space(
    yandex_fake: YandexFake,
) -> None:
    doc = _yandex(yandex_fake)
    query = doc.for_queries()

    query.encode(["вопрос"])

    sent = yandex_fake.requests_to("/foundationModels/v1/textEmbedding")[0]
    assert sent.json()["modelUri"] == "emb://b1gfakefolder/text-search-query/latest"
    assert query.name == doc.name == "yandex/text-search"


def test_yandex_encoder_rejects_a_text_over_the_token_limit_with_the_reason(
    yandex_fake: YandexFake,
) -> None:
    with pytest.raises(ProviderBadRequest, match="no more than 2000"):
        _yandex(yandex_fake).encode(["слово " * 2000])


def test_yandex_encoder_retries_a_rate_limit(yandex_fake: YandexFake) -> None:
    yandex_fake.fail(429, path="/foundationModels/v1/textEmbedding")

    assert _yandex(yandex_fake).encode(TEXTS[:1]).shape == (1, 256)


def test_encoder_of_an_unconfigured_provider_says_how_to_configure_it(settings: Any) -> None:
    settings.GIGACHAT_CREDENTIALS = ""

    with pytest.raises(ProviderNotConfigured, match="GIGACHAT_CREDENTIALS"):
        get_encoder("gigachat")


def test_registry_builds_the_yandex_encoder_from_settings(
    settings: Any, yandex_fake: YandexFake
) -> None:
    settings.YANDEX_API_KEY = yandex_fake.api_key
    settings.YANDEX_FOLDER_ID = yandex_fake.folder_id
    settings.YANDEX_BASE_URL = yandex_fake.url

    encoder = get_encoder("yandex")

    assert encoder.dimension == 256
    assert encoder.encode(["тест"]).shape == (1, 256)
