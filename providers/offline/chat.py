"""The offline provider: needs no key and no network. It answers by quoting the sentences of
the retrieved passages that answer the question (:mod:`providers.offline.extract`), whole, each
under its passage's ``[n]`` citation, streamed word by word like any other provider."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator

from providers.base import ChatRequest, Delta, ModelInfo, SourcePassage, Usage
from providers.offline import extract

MODEL = "offline-extractive"

NOT_CONFIGURED_TEXT = (
    "No language model provider is configured, and no passages from your documents matched "
    "the question, so there is nothing to quote. To get generated answers, configure a "
    "provider in the environment and restart: YandexGPT (YANDEX_API_KEY or YANDEX_IAM_TOKEN, "
    "and YANDEX_FOLDER_ID), GigaChat (GIGACHAT_CREDENTIALS and GIGACHAT_SCOPE) or any "
    "OpenAI-compatible server such as Ollama or vLLM (OPENAI_BASE_URL and, if it needs one, "
    "OPENAI_API_KEY); then set DEFAULT_PROVIDER to yandexgpt, gigachat or openai."
)


NOT_CONFIGURED_TEXT_RU = (
    "Языковая модель не настроена, а в ваших документах не нашлось фрагментов, подходящих к "
    "вопросу, так что цитировать нечего. Чтобы получать сгенерированные ответы, настройте "
    "провайдера в окружении и перезапустите RAGGEN: YandexGPT (YANDEX_API_KEY или "
    "YANDEX_IAM_TOKEN и YANDEX_FOLDER_ID), GigaChat (GIGACHAT_CREDENTIALS и GIGACHAT_SCOPE) "
    "или любой OpenAI-совместимый сервер, например Ollama или vLLM (OPENAI_BASE_URL и, если "
    "нужно, OPENAI_API_KEY); затем задайте DEFAULT_PROVIDER: yandexgpt, gigachat или openai."
)

_TEXTS = {
    "en": (
        "No language model provider is configured, so here are the sentences from your "
        "documents that best answer the question:",
        "To get a generated answer, configure YandexGPT, GigaChat or an OpenAI-compatible "
        "server and set DEFAULT_PROVIDER.",
        "p.",
        NOT_CONFIGURED_TEXT,
    ),
    "ru": (
        "Языковая модель не настроена, поэтому вот предложения из ваших документов, которые "
        "лучше всего отвечают на вопрос:",
        "Чтобы получать сгенерированные ответы, настройте YandexGPT, GigaChat или "
        "OpenAI-совместимый сервер и задайте DEFAULT_PROVIDER.",
        "с.",
        NOT_CONFIGURED_TEXT_RU,
    ),
}


def question_language(text: str) -> str:
    """``ru`` when most letters of ``text`` are Cyrillic, else ``en``: the offline answer
    speaks the language of the question."""
    cyrillic = len(re.findall(r"[А-Яа-яЁё]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "ru" if cyrillic > latin else "en"


def _where(source: SourcePassage, page_word: str) -> str:
    return source.title if source.page is None else f"{source.title}, {page_word} {source.page}"


def _quote(sentences: list[extract.Sentence]) -> str:
    """The sentences of one passage, in order; "…" where sentences were left out between."""
    parts = [sentences[0].text]
    for before, sentence in itertools.pairwise(sentences):
        parts.append(" " if sentence.position == before.position + 1 else " … ")
        parts.append(sentence.text)
    return "".join(parts)


def compose_answer(request: ChatRequest, budget: extract.Budget = extract.DEFAULT_BUDGET) -> str:
    """The offline answer text for ``request``: the sentences of the passages that answer the
    question (whole, grouped by passage in the order of the sources), each passage's quote after
    its citation ``[n]``; or an explanation of how to configure a provider when there are no
    passages. Calls ``request.similarity`` when it is set."""
    question = request.question_text
    intro, outro, page_word, not_configured = _TEXTS[question_language(question)]
    picked = extract.select(
        question,
        [source.text for source in request.sources],
        similarity=request.similarity,
        budget=budget,
    )
    if not picked:
        return not_configured
    lines = [intro, ""]
    for index, source in enumerate(request.sources):
        mine = [s for s in picked if s.passage == index]
        if mine:
            lines.append(f"[{source.number}] {_where(source, page_word)}: «{_quote(mine)}»")
            lines.append("")
    lines.append(outro)
    return "\n".join(lines)


class OfflineProvider:
    """Quotes the sentences of the request's passages that answer its question. ``word_delay``
    (seconds) paces the stream; ``budget`` bounds what is quoted."""

    name = "offline"
    default_model = MODEL
    # It quotes ``request.sources`` itself: the caller may pass a ``request.similarity``.
    quotes_sources = True

    def __init__(
        self, *, word_delay: float = 0.0, budget: extract.Budget = extract.DEFAULT_BUDGET
    ) -> None:
        self.word_delay = word_delay
        self.budget = budget

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        if request.similarity is None:
            text = compose_answer(request, self.budget)
        else:  # an encoder: keep the event loop free
            text = await asyncio.to_thread(compose_answer, request, self.budget)
        words = re.findall(r"\S+\s*|\s+", text)
        for word in words:
            if self.word_delay:
                await asyncio.sleep(self.word_delay)
            else:
                await asyncio.sleep(0)  # let a cancellation in between words
            yield Delta(text=word)
        prompt_words = sum(len(m.content.split()) for m in request.messages)
        usage = Usage(
            input_tokens=prompt_words,
            output_tokens=len(words),
            total_tokens=prompt_words + len(words),
        )
        yield Delta(text="", finish_reason="stop", usage=usage, model=MODEL)

    async def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                MODEL,
                description="Quotes the sentences that answer; needs no key",
            )
        ]
