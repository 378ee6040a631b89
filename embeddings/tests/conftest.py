"""Fixtures of the retrieval engine's tests: the fake encoder everywhere, knowledge bases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from embeddings import services
from embeddings.encoder import FakeEncoder
from embeddings.tests.factories import make_kb


@pytest.fixture(autouse=True)
def fake_encoder() -> Iterator[FakeEncoder]:
    """Every test encodes with the 384-d hashing encoder unless it loads the real model."""
    encoder = FakeEncoder()
    with services.use_encoder(encoder):
        yield encoder


@pytest.fixture
def kb(alice: Any) -> Any:
    return make_kb(alice)
