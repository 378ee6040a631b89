"""Fixtures of the chat's tests: the fake encoder, an indexed knowledge base, and the loopback
OpenAI-compatible fake as the ``openai`` provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chat.tests.factories import make_indexed_kb
from embeddings.encoder import FakeEncoder
from providers.fakes import OpenAIFake


@pytest.fixture(autouse=True)
def _fake_encoder_everywhere(fake_encoder: FakeEncoder) -> FakeEncoder:
    """Every test here encodes with the 384-d hashing encoder (root conftest's fixture)."""
    return fake_encoder


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
