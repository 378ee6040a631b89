from __future__ import annotations

from providers.offline.extract import WEAK_PASSAGE, best_passage_score, split_sentences

from .test_offline import DEFENCE

QUESTION = "Сколько оппонентов назначается по диссертации на соискание степени доктора наук?"


def test_best_passage_score_is_high_for_a_passage_that_answers() -> None:
    off_topic = "Столовая работает с девяти до шести. Парковка для сотрудников бесплатная."

    assert best_passage_score(QUESTION, [off_topic, DEFENCE]) > 0.8


def test_best_passage_score_is_weak_for_passages_on_another_subject() -> None:
    passages = [
        "Столовая работает с девяти до шести. Парковка для сотрудников бесплатная.",
        "Отпуск оформляется заявлением за две недели.",
    ]

    assert best_passage_score(QUESTION, passages) < WEAK_PASSAGE
    assert best_passage_score(QUESTION, []) == 0.0


def test_sentences_of_a_wrapped_pdf_paragraph_are_joined_across_line_breaks() -> None:
    text = (
        "Совет назначает\nтрёх оппонентов, т. е. учёных.\nОтзывы представляются\nзаранее."
        "\n\nГлава 2"
    )

    assert split_sentences(text) == (
        "Совет назначает трёх оппонентов, т. е. учёных.",
        "Отзывы представляются заранее.",
        "Глава 2",
    )
