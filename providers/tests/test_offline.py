from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from providers.base import ChatMessage, ChatRequest, SentenceSimilarity, SourcePassage, collect
from providers.offline.chat import OfflineProvider
from providers.offline.extract import MAX_SENTENCE_CHARS, Budget

ROOT = Path(__file__).resolve().parents[2]
QUESTION = (ChatMessage("user", "Как оформить отпуск?"),)
SOURCES = (
    SourcePassage(1, "handbook.pdf", "Отпуск оформляется заявлением за две недели.", page=4),
    SourcePassage(2, "faq.txt", "Заявление подписывает руководитель."),
)


async def test_offline_answer_quotes_the_answering_passage_with_its_citation_and_page() -> None:
    answer = await collect(OfflineProvider(), ChatRequest(QUESTION, sources=SOURCES))

    assert "[1] handbook.pdf, с. 4: «Отпуск оформляется заявлением за две недели.»" in answer.text
    assert answer.text.startswith("Языковая модель не настроена")
    # No word of the question in [2]: it does not answer, and is not quoted.
    assert "[2]" not in answer.text
    assert answer.provider == "offline"
    assert answer.model == "offline-extractive"
    assert answer.finish_reason == "stop"


async def test_offline_answer_speaks_the_language_of_the_question() -> None:
    english = (ChatMessage("user", "How do I apply for leave?"),)
    answer = await collect(OfflineProvider(), ChatRequest(english, sources=SOURCES))

    assert answer.text.startswith("No language model provider is configured")
    assert "[1] handbook.pdf, p. 4: «Отпуск" in answer.text


async def test_offline_answer_without_passages_says_how_to_configure_a_provider() -> None:
    answer = await collect(OfflineProvider(), ChatRequest(QUESTION))

    assert "Языковая модель не настроена" in answer.text
    for name in ("YANDEX_API_KEY", "GIGACHAT_CREDENTIALS", "OPENAI_BASE_URL", "DEFAULT_PROVIDER"):
        assert name in answer.text


async def test_offline_streams_word_by_word_and_ends_with_one_final_delta() -> None:
    deltas = [d async for d in OfflineProvider().stream(ChatRequest(QUESTION, sources=SOURCES))]

    assert len(deltas) > 10
    assert all(len(d.text.split()) <= 1 for d in deltas)
    assert [d.finish_reason for d in deltas].count("stop") == 1
    assert deltas[-1].finish_reason == "stop" and deltas[-1].usage is not None


async def test_offline_run_on_text_without_sentence_ends_is_shortened_on_a_word_boundary() -> None:
    long = SourcePassage(1, "big.txt", "слово " * 500)
    answer = await collect(OfflineProvider(), ChatRequest(QUESTION, sources=(long,)))

    assert "«слово слово" in answer.text and "слово …»" in answer.text
    assert len(_quotes(answer.text)["[1]"]) <= MAX_SENTENCE_CHARS + 2


def test_offline_run_on_text_is_quoted_around_the_question_word() -> None:
    run_on = "таблица " * 300 + "отпуск оформляется заявлением " + "строка " * 300
    text = _ask("Как оформить отпуск?", SourcePassage(1, "table.pdf", run_on))

    quote = _quotes(text)["[1]"]
    assert quote.startswith("… таблица") and quote.endswith("строка …")
    assert "отпуск оформляется заявлением" in quote
    assert len(quote) <= MAX_SENTENCE_CHARS + 4


async def test_offline_stream_can_be_cancelled_between_words() -> None:
    provider = OfflineProvider(word_delay=0.05)
    seen: list[str] = []

    async def consume() -> None:
        async for delta in provider.stream(ChatRequest(QUESTION, sources=SOURCES)):
            seen.append(delta.text)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 1 <= len(seen) < 10


# --- sentence-level extraction -------------------------------------------------------------

# A regulation paragraph: the answering clause («назначаются 3 официальных оппонента») is in the
# second half of a long sentence, past the first 400 characters of the passage.
DEFENCE = (
    "22. Для проведения защиты диссертации совет принимает диссертацию к рассмотрению не позднее "
    "двух месяцев со дня её представления соискателем, размещает на официальном сайте "
    "организации текст объявления о защите и полный текст диссертации и направляет в "
    "Министерство электронную копию объявления. Диссертационный совет назначает официальных "
    "оппонентов по диссертации из числа компетентных в соответствующей отрасли науки учёных, "
    "давших на это своё согласие, не являющихся членами совета и работниками организации, где "
    "выполнялась диссертация, при этом по диссертации на соискание учёной степени доктора наук "
    "назначаются 3 официальных оппонента, являющихся докторами наук, а по диссертации на "
    "соискание учёной степени кандидата наук — 2 официальных оппонента. Официальные оппоненты "
    "представляют в совет письменные отзывы не позднее чем за 15 дней до дня защиты."
)
DEFENCE_ANSWER = DEFENCE[DEFENCE.index("Диссертационный совет") : DEFENCE.index(" Официальные")]


# A generous budget, for the tests of order: what is picked then does not hang on the tuning.
GENEROUS = Budget(max_sentences=4, max_chars=2000, relative=0.3)


def _ask(
    question: str,
    *sources: SourcePassage,
    similarity: SentenceSimilarity | None = None,
    budget: Budget | None = None,
) -> str:
    request = ChatRequest((ChatMessage("user", question),), sources=sources, similarity=similarity)
    provider = OfflineProvider() if budget is None else OfflineProvider(budget=budget)
    return asyncio.run(collect(provider, request)).text


def _quotes(text: str) -> dict[str, str]:
    """The quote of each citation line: ``{"[1]": "...", ...}``."""
    found = {}
    for line in text.splitlines():
        if line.startswith("[") and "«" in line:
            found[line.split(" ", 1)[0]] = line[line.index("«") + 1 : line.rindex("»")]
    return found


def test_offline_quotes_the_whole_sentence_that_holds_the_answering_clause() -> None:
    assert DEFENCE.index("назначаются 3") > 400
    text = _ask(
        "Сколько оппонентов назначается по диссертации на соискание степени доктора наук?",
        SourcePassage(1, "polozhenie.pdf", DEFENCE, page=12),
    )

    assert f"[1] polozhenie.pdf, с. 12: «{DEFENCE_ANSWER}»" in text
    assert "назначаются 3 официальных оппонента" in text
    assert "…" not in text
    assert "Для проведения защиты" not in text  # short: only the sentence that answers


def test_offline_picks_the_answering_sentence_of_an_english_passage() -> None:
    passage = (
        "The bridge was designed by a team of local engineers. Construction began in 1931 and "
        "took six years, employing over a thousand workers. The bridge was opened to traffic "
        "on 27 May 1937, after a week of celebrations. Today it carries about 112,000 vehicles "
        "a day."
    )
    text = _ask("When was the bridge opened to traffic?", SourcePassage(1, "history.txt", passage))

    assert _quotes(text) == {
        "[1]": "The bridge was opened to traffic on 27 May 1937, after a week of celebrations."
    }
    assert text.startswith("No language model provider is configured")


def test_offline_matches_question_words_only_in_inflected_forms() -> None:
    passage = (
        "Зарплата выплачивается дважды в месяц. Заявления на отпуск подписываются "
        "руководителем отдела."
    )
    text = _ask("Кто подписывает заявление об отпуске?", SourcePassage(1, "rules.txt", passage))

    assert _quotes(text) == {"[1]": "Заявления на отпуск подписываются руководителем отдела."}


def test_offline_orders_sentences_by_passage_then_position_and_cites_each_passage() -> None:
    first = "Sharks have no bones. A shark skeleton is cartilage, lighter than bone."
    second = "Rays are flat fish. Like a shark's, a ray's skeleton is made of cartilage."
    third = "Whales breathe air through a blowhole."
    text = _ask(
        "Why is a shark skeleton made of cartilage?",
        SourcePassage(1, "sharks.txt", first),
        SourcePassage(2, "rays.txt", second),
        SourcePassage(3, "whales.txt", third),
        budget=GENEROUS,
    )

    quotes = _quotes(text)
    # [2] answers best, but the sources keep their order; whales.txt answers nothing.
    assert list(quotes) == ["[1]", "[2]"]
    assert quotes["[1]"].endswith("A shark skeleton is cartilage, lighter than bone.")
    assert quotes["[2]"] == "Like a shark's, a ray's skeleton is made of cartilage."
    assert text.index("[1] sharks.txt") < text.index("[2] rays.txt")


def test_offline_orders_two_sentences_of_a_passage_by_their_position() -> None:
    passage = (
        "Leave is requested in writing. Payroll runs monthly. The manager approves leave "
        "requests and signs every leave request within three days."
    )
    text = _ask(
        "Who approves leave requests?", SourcePassage(1, "hr.txt", passage), budget=GENEROUS
    )

    # The later sentence scores higher; the quote keeps the document's order, "…" for the gap.
    assert _quotes(text) == {
        "[1]": "Leave is requested in writing. … The manager approves leave requests and signs "
        "every leave request within three days."
    }


def test_offline_quotes_a_sentence_repeated_in_overlapping_passages_once() -> None:
    shared = "The warranty lasts two years from the date of purchase."
    text = _ask(
        "How long does the warranty last?",
        SourcePassage(1, "manual.pdf", f"Keep the receipt. {shared}", page=3),
        SourcePassage(2, "manual.pdf", f"{shared} Repairs are free.", page=4),
    )

    assert text.count(shared) == 1
    assert "[1] manual.pdf, p. 3" in text


def test_offline_uses_the_similarity_the_caller_passes() -> None:
    sentences = [
        "The office is closed at the end of the year.",
        "Staff may work from home on Fridays.",
    ]
    asked: list[tuple[str, list[str]]] = []

    def similarity(question: str, texts: Sequence[str]) -> list[float]:
        asked.append((question, list(texts)))
        return [0.95 if "home" in s else 0.2 for s in texts]

    question = "Can I telecommute at the end of the week?"
    source = SourcePassage(1, "office.txt", " ".join(sentences))
    with_encoder = _ask(question, source, similarity=similarity)
    keywords_only = _ask(question, source)

    assert asked == [(question, sentences)]
    assert _quotes(with_encoder) == {"[1]": "Staff may work from home on Fridays."}
    assert _quotes(keywords_only) == {"[1]": "The office is closed at the end of the year."}


def test_offline_answer_is_the_same_under_any_hash_seed() -> None:
    # Three sentences that answer equally well, a budget of two: the earlier passages win.
    script = (
        "import asyncio\n"
        "from providers.base import ChatMessage, ChatRequest, SourcePassage, collect\n"
        "from providers.offline.chat import OfflineProvider\n"
        "from providers.offline.extract import Budget\n"
        "p = [SourcePassage(n, f'{n}.txt', f'Tea is grown in {place}.')\n"
        "     for n, place in ((1, 'China'), (2, 'India'), (3, 'Kenya'))]\n"
        "r = ChatRequest((ChatMessage('user', 'Where is tea grown?'),), sources=tuple(p))\n"
        "provider = OfflineProvider(budget=Budget(max_sentences=2))\n"
        "print(asyncio.run(collect(provider, r)).text)\n"
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(done.stdout)

    assert len(outputs) == 1
    assert _quotes(outputs.pop()) == {
        "[1]": "Tea is grown in China.",
        "[2]": "Tea is grown in India.",
    }


def test_offline_answers_the_question_not_the_prompt_that_wraps_it() -> None:
    sources = (
        SourcePassage(1, "rules.txt", "Отпуск оформляется заявлением за две недели."),
        SourcePassage(2, "pay.txt", "Зарплата выплачивается дважды в месяц."),
    )
    prompt = "\n\n".join(s.text for s in sources) + "\n\nQuestion: Когда выплачивается зарплата?"
    request = ChatRequest(
        (ChatMessage("user", prompt),), sources=sources, question="Когда выплачивается зарплата?"
    )

    text = asyncio.run(collect(OfflineProvider(), request)).text

    # Every passage's words are in the prompt; only the question picks what is quoted.
    assert _quotes(text) == {"[2]": "Зарплата выплачивается дважды в месяц."}
    assert request.question_text == "Когда выплачивается зарплата?"


def test_offline_answer_speaks_the_language_of_the_question_not_of_the_wrapped_passages() -> None:
    prompt = "<sources>Отпуск оформляется заявлением за две недели.</sources> How to get leave?"
    request = ChatRequest(
        (ChatMessage("user", prompt),), sources=SOURCES[:1], question="How to get leave?"
    )

    text = asyncio.run(collect(OfflineProvider(), request)).text

    assert text.startswith("No language model provider is configured")
