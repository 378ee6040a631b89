from __future__ import annotations

import asyncio

import pytest

from providers.base import ChatMessage, ChatRequest, SourcePassage, collect
from providers.offline.chat import OfflineProvider

QUESTION = (ChatMessage("user", "Как оформить отпуск?"),)
SOURCES = (
    SourcePassage(1, "handbook.pdf", "Отпуск оформляется заявлением за две недели.", page=4),
    SourcePassage(2, "faq.txt", "Заявление подписывает руководитель."),
)


async def test_offline_answer_quotes_each_passage_with_its_citation_and_page() -> None:
    answer = await collect(OfflineProvider(), ChatRequest(QUESTION, sources=SOURCES))

    assert "[1] handbook.pdf, с. 4: «Отпуск оформляется заявлением за две недели.»" in answer.text
    assert answer.text.startswith("Языковая модель не настроена")
    assert "[2] faq.txt: «Заявление подписывает руководитель.»" in answer.text
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


async def test_offline_long_passage_is_shortened_on_a_word_boundary() -> None:
    long = SourcePassage(1, "big.txt", "слово " * 500)
    answer = await collect(OfflineProvider(), ChatRequest(QUESTION, sources=(long,)))

    assert "слово …»" in answer.text
    assert len(answer.text) < 1000


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
