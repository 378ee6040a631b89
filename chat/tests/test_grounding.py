"""The grounding check (chat.grounding): sentences, exact facts, overlap, and its measured
precision and recall of the "unsupported" flag on the built set (chat/tests/grounding_set.py)."""

from __future__ import annotations

import numpy as np
import pytest

from chat import grounding
from chat.tests.grounding_set import available, build_set, evaluate

RU_PASSAGE = (
    "Альберт Эйнштейн родился 14 марта 1879 года в городе Ульм. В 1896 году он поступил в "
    "Политехникум в Цюрихе, где изучал физику и математику."
)
EN_PASSAGE = (
    "The Panthers defense gave up just 308 points, ranking sixth in the league. "
    "Defensive tackle Kawann Short led the team with 11 sacks."
)


def _texts(text: str) -> list[str]:
    return [s.text for s in grounding.split_sentences(text)]


def test_splitter_keeps_russian_abbreviations_initials_and_decimals_inside_a_sentence():
    text = (
        "Это т. е. пример. Цена 3,5 руб. за штуку [1]. "
        "А. С. Пушкин родился в 1799 г. в Москве [2]. Да."
    )
    assert _texts(text) == [
        "Это т. е. пример.",
        "Цена 3,5 руб. за штуку [1].",
        "А. С. Пушкин родился в 1799 г. в Москве [2].",
        "Да.",
    ]


def test_splitter_keeps_english_abbreviations_and_moves_a_leading_citation_back():
    text = (
        "E.g. this is fine. The value is 3.5 m [1]. J. R. R. Tolkien wrote it, i.e. the book. "
        "Dr. Smith agreed. [2] Yes."
    )
    assert _texts(text) == [
        "E.g. this is fine.",
        "The value is 3.5 m [1].",
        "J. R. R. Tolkien wrote it, i.e. the book.",
        "Dr. Smith agreed. [2]",
        "Yes.",
    ]


def test_splitter_makes_headings_and_list_items_sentences_and_offsets_match():
    text = "## Итоги\nИтак:\n- первый пункт\n- second item\n[3]\n1. Third item here"
    spans = grounding.split_sentences(text)
    assert [s.text for s in spans] == [
        "## Итоги",
        "Итак:",
        "- первый пункт",
        "- second item\n[3]",
        "1. Third item here",
    ]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_a_copied_sentence_is_supported_by_its_passage():
    report = grounding.check(
        answer="Альберт Эйнштейн родился 14 марта 1879 года в городе Ульм [2].",
        passages=[EN_PASSAGE, RU_PASSAGE],
    )
    (sentence,) = report.sentences
    assert sentence.supported is True
    assert sentence.passage == 1
    assert sentence.overlap == 1.0


def test_a_changed_number_is_flagged_even_with_every_word_shared():
    report = grounding.check(
        answer="The Panthers defense gave up just 318 points [1].", passages=[EN_PASSAGE]
    )
    (sentence,) = report.sentences
    assert sentence.supported is False
    assert sentence.overlap == 1.0
    assert sentence.missing == ("318",)


def test_decimal_comma_and_point_are_the_same_number():
    report = grounding.check(
        answer="Скорость составила 3.5 метра в секунду.",
        passages=["Скорость составила 3,5 метра в секунду."],
    )
    assert report.sentences[0].supported is True


def test_a_swapped_name_is_flagged():
    report = grounding.check(
        answer="В 1896 году Эйнштейн поступил в Политехникум в Берлине [1].", passages=[RU_PASSAGE]
    )
    (sentence,) = report.sentences
    assert sentence.supported is False
    assert sentence.missing == ("берлин",)


def test_a_sentence_from_another_document_is_flagged():
    report = grounding.check(
        answer="Defensive tackle Kawann Short led the team with 11 sacks.",
        passages=[RU_PASSAGE],
    )
    assert report.sentences[0].supported is False


def test_short_sentences_and_lone_citations_are_neutral_and_the_share_counts_the_rest():
    answer = (
        "Итак:\n"
        "Альберт Эйнштейн родился 14 марта 1879 года в городе Ульм [1]. "
        "Он изучал физику и математику в Цюрихе [1]. "
        "Эйнштейн родился в 1880 году [1].\n"
        "[2]\n"
        "Yes."
    )
    report = grounding.check(answer=answer, passages=[RU_PASSAGE])
    assert [s.supported for s in report.sentences] == [None, True, True, False, None]
    assert report.counted == 3
    assert report.supported_share == pytest.approx(2 / 3)
    assert report.as_dict()["sentences"][3]["missing"] == ["1880"]


def test_no_counted_sentence_gives_no_share():
    assert grounding.check(answer="Да. [1]", passages=[RU_PASSAGE]).supported_share is None


class _TopicEncoder:
    """Unit vectors by topic: texts mentioning a word of ``topic`` point one way."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def encode(self, texts):
        return np.asarray(
            [[1.0, 0.0] if self.topic in t.lower() else [0.0, 1.0] for t in texts],
            dtype=np.float32,
        )


def test_the_encoder_supports_a_paraphrase_with_less_overlap_but_not_a_changed_fact():
    passage = "Kawann Short led the team with 11 sacks."
    answer = "Kawann Short recorded the highest number of sacks, 11."  # overlap 0.5
    alone = grounding.check(answer=answer, passages=[passage])
    assert alone.sentences[0].supported is False
    with_encoder = grounding.check(answer=answer, passages=[passage], encoder=_TopicEncoder("sack"))
    assert with_encoder.sentences[0].supported is True
    assert with_encoder.sentences[0].similarity == pytest.approx(1.0)
    changed = grounding.check(
        answer=answer.replace("11", "12"), passages=[passage], encoder=_TopicEncoder("sack")
    )
    assert changed.sentences[0].supported is False


def test_the_built_set_is_deterministic_and_plants_every_kind():
    if not available("ru"):
        pytest.skip("no /work/shared/testdata")
    first, again = build_set("ru", seed=3), build_set("ru", seed=3)
    assert first == again
    kinds = {p.kind for case in first for p in case.parts if p.unsupported}
    assert kinds == {"number", "name", "foreign"}


@pytest.mark.parametrize("language", ["ru", "en"])
def test_flag_precision_and_recall_on_the_built_set_with_word_overlap(language):
    if not available(language):
        pytest.skip("no /work/shared/testdata")
    scores = evaluate(build_set(language), thresholds=grounding.STEM_ONLY)
    assert scores.true_flags > 150
    assert scores.precision >= 0.9
    assert scores.recall >= 0.8


@pytest.mark.slow
def test_flag_precision_and_recall_on_the_english_set_with_minilm():
    if not available("en"):
        pytest.skip("no /work/shared/testdata")
    from embeddings.encoder import SentenceTransformerEncoder
    from embeddings.model_files import model_name, resolve_model_path

    encoder = SentenceTransformerEncoder(resolve_model_path(""), name=model_name(""))
    cases = build_set("en")[:20]
    scores = evaluate(cases, encoder=encoder, thresholds=grounding.WITH_ENCODER)
    assert scores.precision >= 0.9
    assert scores.recall >= 0.8
