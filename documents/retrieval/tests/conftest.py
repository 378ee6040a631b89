"""Fixtures of the retrieval engine's tests: the fake encoder everywhere, knowledge bases."""

from __future__ import annotations

from typing import Any

import pytest

from documents.retrieval.tests.factories import make_kb
from embeddings.encoder import FakeEncoder


@pytest.fixture(autouse=True)
def _fake_encoder_everywhere(fake_encoder: FakeEncoder) -> FakeEncoder:
    """Every test here encodes with the 384-d hashing encoder (root conftest's fixture)."""
    return fake_encoder


@pytest.fixture
def kb(alice: Any) -> Any:
    return make_kb(alice)
