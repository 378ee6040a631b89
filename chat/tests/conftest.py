"""Fixtures of the chat's tests: the fake encoder, an indexed knowledge base, and the loopback
OpenAI-compatible fake as the ``openai`` provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chat.tests.factories import make_indexed_kb
from embeddings import services as embeddings
from embeddings.encoder import FakeEncoder
from providers.fakes import OpenAIFake


@pytest.fixture(autouse=True)
def fake_encoder() -> Iterator[FakeEncoder]:
    encoder = FakeEncoder()
    with embeddings.use_encoder(encoder):
        yield encoder


@pytest.fixture
def kb(alice: Any) -> Any:
    return make_indexed_kb(alice)


@pytest.fixture
def openai_fake(settings: Any) -> Iterator[OpenAIFake]:
    """The scripted fake behind the ``openai`` provider: set ``openai_fake.script``."""
    with OpenAIFake() as fake:
        settings.OPENAI_BASE_URL = f"{fake.url}/v1"
        settings.OPENAI_MODEL = fake.models[0]
        settings.OPENAI_API_KEY = ""
        settings.LLM_MAX_RETRIES = 0
        settings.LLM_READ_TIMEOUT = 5.0
        yield fake
