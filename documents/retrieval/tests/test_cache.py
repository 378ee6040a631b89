from __future__ import annotations

import numpy as np
import pytest

from documents.models import CachedEmbedding
from documents.retrieval.cache import cache_counts, encode_cached
from embeddings.encoder import FakeEncoder

pytestmark = pytest.mark.django_db


def test_identical_text_is_never_encoded_twice():
    encoder = FakeEncoder()
    first = encode_cached(encoder=encoder, texts=["alpha text", "beta text", "alpha text"])
    second = encode_cached(encoder=encoder, texts=["beta text", "gamma text"])
    assert encoder.texts_encoded == 3  # alpha, beta, gamma
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(first[1], second[0])
    assert CachedEmbedding.objects.count() == 3


def test_cache_counts_hits_and_misses_per_model():
    encoder = FakeEncoder()
    encode_cached(encoder=encoder, texts=["one", "two"])
    encode_cached(encoder=encoder, texts=["one", "two", "three"])
    hits, misses, entries = cache_counts(model=encoder.name)
    assert (hits, misses, entries) == (2, 3, 3)


def test_a_cached_vector_of_another_dimension_is_replaced_not_returned():
    encode_cached(encoder=FakeEncoder(dimension=8), texts=["same text"])
    vectors = encode_cached(encoder=FakeEncoder(dimension=16), texts=["same text"])
    assert vectors.shape == (1, 16)
    assert CachedEmbedding.objects.get().dimension == 16
