"""One contract, every adapter: each runs against its loopback fake, which streams through
the same torture writer (split bytes, coalesced events, stalls, drops, malformed chunks)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from providers.base import ChatMessage, ChatProvider, ChatRequest, Delta, apply_delta, collect
from providers.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderContextTooLong,
    ProviderError,
    ProviderModelNotFound,
    ProviderRateLimited,
    ProviderStreamInterrupted,
    ProviderTimeout,
    ProviderUnavailable,
)
from providers.fakes import FakeServer, GigaChatFake, OpenAIFake, Script, YandexFake
from providers.tests.conftest import FAST, make_gigachat, make_openai, make_yandex

QUESTION = "Сколько дней отпуска положено сотруднику?"
REQUEST = ChatRequest(
    messages=(ChatMessage("system", "Отвечай кратко."), ChatMessage("user", QUESTION))
)
TOKENS = ["Сотруднику ", "положено ", "двадцать ", "восемь ", "дней ", "отпуска."]
ANSWER = "".join(TOKENS)


@dataclass
class Harness:
    fake: FakeServer
    chat_path: str
    make: Callable[..., ChatProvider]
    bad_auth: dict[str, Any]

    @property
    def provider(self) -> ChatProvider:
        return self.make(self.fake)

    def chat_requests(self) -> int:
        return len(self.fake.requests_to(self.chat_path))


def _harness(name: str) -> Iterator[Harness]:
    if name == "yandexgpt":
        with YandexFake() as fake:
            yield Harness(
                fake, "/foundationModels/v1/completion", make_yandex, {"api_key": "wrong-key"}
            )
    elif name == "gigachat":
        with GigaChatFake() as fake:
            yield Harness(
                fake, "/api/v1/chat/completions", make_gigachat, {"credentials": "d3Jvbmc="}
            )
    else:
        with OpenAIFake(api_key="sk-local") as fake:
            yield Harness(fake, "/v1/chat/completions", make_openai, {"api_key": "sk-wrong"})


@pytest.fixture(params=["yandexgpt", "gigachat", "openai"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    yield from _harness(request.param)


async def _deltas(provider: ChatProvider, request: ChatRequest = REQUEST) -> list[Delta]:
    return [d async for d in provider.stream(request)]


async def _partial_then_error(provider: ChatProvider) -> tuple[str, ProviderError]:
    text = ""
    with pytest.raises(ProviderError) as caught:
        async for delta in provider.stream(REQUEST):
            text = apply_delta(text, delta)
    return text, caught.value


async def test_stream_yields_text_deltas_then_exactly_one_final_delta(harness: Harness) -> None:
    harness.fake.script = Script(tokens=TOKENS)

    deltas = await _deltas(harness.provider)

    assert "".join(d.text for d in deltas) == ANSWER
    finals = [d for d in deltas if d.finish_reason is not None]
    assert finals == [deltas[-1]]
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].usage is not None and deltas[-1].usage.output_tokens == len(TOKENS)
    assert deltas[-1].model


async def test_collected_answer_names_provider_and_model(harness: Harness) -> None:
    answer = await collect(harness.provider, REQUEST)

    assert QUESTION in answer.text  # the fake echoes the question
    assert answer.provider == harness.provider.name
    assert answer.model


@pytest.mark.parametrize("split", [1, 3, 7])
async def test_answer_survives_chunks_split_at_any_byte_even_inside_cyrillic_letters(
    harness: Harness, split: int
) -> None:
    harness.fake.script = Script(tokens=["Да", ", ", "ёж"], split_every=split)

    answer = await collect(harness.provider, REQUEST)

    assert answer.text == "Да, ёж"
    assert answer.finish_reason == "stop"


async def test_answer_survives_all_events_coalesced_into_one_write(harness: Harness) -> None:
    harness.fake.script = Script(tokens=TOKENS, coalesce=True)

    assert (await collect(harness.provider, REQUEST)).text == ANSWER


async def test_wrong_key_gives_an_auth_error_that_does_not_echo_the_key(harness: Harness) -> None:
    provider = harness.make(harness.fake, **harness.bad_auth)

    with pytest.raises(ProviderAuthError) as caught:
        await collect(provider, REQUEST)

    assert "rejected" in caught.value.message or "refused" in caught.value.message
    assert not caught.value.retryable
    for secret in harness.bad_auth.values():
        assert secret not in caught.value.message


async def test_unknown_model_gives_a_model_not_found_error(harness: Harness) -> None:
    with pytest.raises(ProviderModelNotFound, match="model"):
        await collect(harness.provider, replace(REQUEST, model="no-such-model"))


async def test_too_long_context_gives_a_context_too_long_error(harness: Harness) -> None:
    harness.fake.context_limit = 5  # type: ignore[attr-defined]

    with pytest.raises(ProviderContextTooLong, match="too long"):
        await collect(harness.provider, REQUEST)


async def test_rate_limit_is_retried_with_backoff_then_reported_with_retry_after(
    harness: Harness,
) -> None:
    harness.fake.fail(429, times=5, path=harness.chat_path, headers={"Retry-After": "1.5"})

    with pytest.raises(ProviderRateLimited) as caught:
        await collect(harness.provider, REQUEST)

    assert caught.value.retry_after == 1.5
    assert caught.value.retryable
    assert harness.chat_requests() == 1 + FAST.max_retries


async def test_unavailable_once_is_retried_and_the_answer_arrives(harness: Harness) -> None:
    harness.fake.fail(503, path=harness.chat_path)

    answer = await collect(harness.provider, REQUEST)

    assert answer.finish_reason == "stop"
    assert harness.chat_requests() == 2


async def test_server_error_is_reported_as_unavailable_without_retry(harness: Harness) -> None:
    harness.fake.fail(500, path=harness.chat_path)

    with pytest.raises(ProviderUnavailable, match="unavailable"):
        await collect(harness.provider, REQUEST)
    assert harness.chat_requests() == 1


async def test_provider_that_is_down_gives_unavailable(harness: Harness) -> None:
    provider = harness.provider
    harness.fake.stop()  # nothing listens on its port any more

    with pytest.raises(ProviderUnavailable, match="Cannot connect"):
        await collect(provider, REQUEST)


async def test_slow_first_token_times_out(harness: Harness) -> None:
    harness.fake.script = Script(first_token_delay=1.0)
    provider = harness.make(harness.fake, http=replace(FAST, read_timeout=0.3))

    with pytest.raises(ProviderTimeout, match="took too long"):
        await collect(provider, REQUEST)


async def test_stalled_stream_times_out_after_the_partial_answer(harness: Harness) -> None:
    harness.fake.script = Script(tokens=TOKENS, stall_after=3)
    provider = harness.make(harness.fake, http=replace(FAST, read_timeout=0.3))

    text, error = await _partial_then_error(provider)

    assert isinstance(error, ProviderTimeout)
    assert text and ANSWER.startswith(text) and text != ANSWER


async def test_connection_dropped_mid_stream_raises_after_the_partial_deltas(
    harness: Harness,
) -> None:
    harness.fake.script = Script(tokens=TOKENS, drop_after=3)

    text, error = await _partial_then_error(harness.provider)

    assert isinstance(error, ProviderStreamInterrupted)
    assert "incomplete" in error.message
    assert text and ANSWER.startswith(text) and text != ANSWER


async def test_after_a_broken_stream_the_same_provider_answers_the_next_question(
    harness: Harness,
) -> None:
    provider = harness.provider
    harness.fake.script = Script(tokens=TOKENS, drop_after=2)
    await _partial_then_error(provider)
    harness.fake.script = Script(tokens=TOKENS)

    answer = await collect(provider, REQUEST)

    assert answer.text == ANSWER


async def test_malformed_chunk_raises_a_bad_response_after_the_partial_deltas(
    harness: Harness,
) -> None:
    harness.fake.script = Script(tokens=TOKENS, malformed_at=3)

    text, error = await _partial_then_error(harness.provider)

    assert isinstance(error, ProviderBadResponse)
    assert text and ANSWER.startswith(text)


async def test_closing_the_stream_closes_the_upstream_connection_at_once(harness: Harness) -> None:
    harness.fake.script = Script(tokens=TOKENS, stall_after=2)
    stream = harness.provider.stream(REQUEST)

    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]

    assert first.text
    assert harness.fake.wait_client_closed(timeout=2.0)


async def test_cancelling_the_task_closes_the_upstream_connection_at_once(harness: Harness) -> None:
    harness.fake.script = Script(tokens=TOKENS, stall_after=2)
    got_one = asyncio.Event()

    async def consume() -> None:
        async for _ in harness.provider.stream(REQUEST):
            got_one.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_one.wait(), 2.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert harness.fake.wait_client_closed(timeout=2.0)


async def test_unknown_extra_fields_and_missing_usage_are_tolerated(harness: Harness) -> None:
    harness.fake.script = Script(tokens=TOKENS, no_usage=True)

    answer = await collect(harness.provider, REQUEST)

    assert answer.text == ANSWER
    assert answer.usage.total_tokens == 0


async def test_answer_cut_by_max_tokens_finishes_with_length(harness: Harness) -> None:
    answer = await collect(harness.provider, replace(REQUEST, max_tokens=2))

    assert answer.finish_reason == "length"


async def test_model_list_is_not_empty(harness: Harness) -> None:
    models = await harness.provider.list_models()

    assert models and all(m.id for m in models)
