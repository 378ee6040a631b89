"""Loopback fakes of the LLM clouds, and adapters pointed at them with fast timeouts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers._http import HttpConfig
from providers.fakes import GigaChatFake, OpenAIFake, YandexFake
from providers.gigachat.chat import GigaChatProvider
from providers.openai.chat import OpenAICompatProvider
from providers.yandex.chat import YandexGPTProvider

FAST = HttpConfig(
    connect_timeout=2.0, read_timeout=2.0, max_retries=2, backoff=0.01, max_backoff=0.05
)


@pytest.fixture
def yandex_fake() -> Iterator[YandexFake]:
    with YandexFake() as fake:
        yield fake


@pytest.fixture
def gigachat_fake() -> Iterator[GigaChatFake]:
    with GigaChatFake() as fake:
        yield fake


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    with OpenAIFake(api_key="sk-local-test") as fake:
        yield fake


def make_yandex(fake: YandexFake, **overrides: object) -> YandexGPTProvider:
    options: dict[str, object] = {
        "base_url": fake.url,
        "folder_id": fake.folder_id,
        "api_key": fake.api_key,
        "http": FAST,
    }
    options.update(overrides)
    return YandexGPTProvider(**options)  # type: ignore[arg-type]


def make_openai(fake: OpenAIFake, **overrides: object) -> OpenAICompatProvider:
    options: dict[str, object] = {
        "base_url": f"{fake.url}/v1",
        "api_key": fake.api_key,
        "model": fake.models[0] if fake.models else "",
        "http": FAST,
    }
    options.update(overrides)
    return OpenAICompatProvider(**options)  # type: ignore[arg-type]


def make_gigachat(fake: GigaChatFake, **overrides: object) -> GigaChatProvider:
    options: dict[str, object] = {
        "base_url": fake.base_url,
        "auth_url": fake.auth_url,
        "credentials": fake.credentials,
        "scope": "GIGACHAT_API_PERS",
        "http": FAST,
    }
    options.update(overrides)
    return GigaChatProvider(**options)  # type: ignore[arg-type]
