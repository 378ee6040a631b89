from __future__ import annotations

import threading

import numpy as np
import pytest

from embeddings.encoder import FakeEncoder, SentenceTransformerEncoder, guess_languages
from embeddings.model_files import model_name, resolve_model_path


def test_fake_encoder_gives_deterministic_unit_vectors_of_384_dimensions():
    a = FakeEncoder().encode(["Договор поставки", "contract terms", ""])
    b = FakeEncoder().encode(["Договор поставки", "contract terms", ""])
    assert a.shape == (3, 384)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)


def test_fake_encoder_puts_texts_sharing_words_closer_than_unrelated_ones():
    v = FakeEncoder().encode(["payment of the invoice", "the invoice payment is due", "red fox"])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3


def test_all_minilm_is_known_as_english_only_and_unknown_models_as_any_language():
    assert guess_languages("all-MiniLM-L6-v2") == frozenset({"en"})
    assert guess_languages("paraphrase-multilingual-MiniLM-L12-v2") == frozenset({"*"})
    assert guess_languages("my-company-model") == frozenset({"*"})


def test_the_real_encoder_knows_its_dimension_without_loading_the_model():
    encoder = SentenceTransformerEncoder(resolve_model_path(""), name=model_name(""))
    assert encoder.dimension == 384
    assert not encoder.loaded


@pytest.mark.slow
def test_the_real_model_loads_once_for_concurrent_threads_and_encodes_normalised_batches():
    encoder = SentenceTransformerEncoder(resolve_model_path(""), name=model_name(""), batch_size=2)
    results: list[np.ndarray] = []
    models: list[object] = []

    def work() -> None:
        results.append(
            encoder.encode(
                ["The cat sat on the mat.", "A cat is sitting on a mat.", "Stock markets fell."]
            )
        )
        models.append(encoder._model)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in models}) == 1
    v = results[0]
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
    np.testing.assert_allclose(results[1], v, atol=1e-5)
