from __future__ import annotations

from dataclasses import replace

import pytest

from providers.base import ChatMessage, ChatRequest, apply_delta, collect
from providers.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderRateLimited,
    ProviderUnavailable,
)
from providers.fakes import Script, YandexFake
from providers.fakes.openai import REFUSAL
from providers.tests.conftest import make_yandex

REQUEST = ChatRequest(
    messages=(ChatMessage("system", "Отвечай по контексту."), ChatMessage("user", "Привет!"))
)
TOKENS = ["Привет", "! Чем могу", " помочь?"]


async def test_request_uses_native_shape_model_uri_text_field_and_string_max_tokens(
    yandex_fake: YandexFake,
) -> None:
    provider = make_yandex(yandex_fake, max_tokens=500)

    await collect(provider, replace(REQUEST, temperature=1.7))

    sent = yandex_fake.requests_to("/foundationModels/v1/completion")[0]
    body = sent.json()
    assert body["modelUri"] == "gpt://b1gfakefolder/yandexgpt-lite/latest"
    assert body["messages"][1] == {"role": "user", "text": "Привет!"}
    assert body["completionOptions"] == {"stream": True, "temperature": 1.0, "maxTokens": "500"}
    assert sent.headers["authorization"] == "Api-Key fake-yandex-api-key"
    assert "x-folder-id" not in sent.headers
    assert sent.headers["x-data-logging-enabled"] == "false"


async def test_iam_token_is_sent_as_bearer_with_the_folder_header(yandex_fake: YandexFake) -> None:
    provider = make_yandex(yandex_fake, api_key="", iam_token=yandex_fake.iam_token)

    await collect(provider, REQUEST)

    sent = yandex_fake.requests[0]
    assert sent.headers["authorization"] == "Bearer t1.fake-iam-token"
    assert sent.headers["x-folder-id"] == "b1gfakefolder"


def test_model_uri_is_built_from_name_and_branch(yandex_fake: YandexFake) -> None:
    provider = make_yandex(yandex_fake, branch="rc")

    assert provider.model_uri("yandexgpt") == "gpt://b1gfakefolder/yandexgpt/rc"
    assert (
        provider.model_uri("yandexgpt-lite/latest") == "gpt://b1gfakefolder/yandexgpt-lite/latest"
    )
    assert provider.model_uri("gpt://other/yandexgpt/rc") == "gpt://other/yandexgpt/rc"


async def test_cumulative_lines_become_deltas_and_string_usage_becomes_numbers(
    yandex_fake: YandexFake,
) -> None:
    yandex_fake.script = Script(tokens=TOKENS)

    deltas = [d async for d in make_yandex(yandex_fake).stream(REQUEST)]

    assert [d.text for d in deltas[:-1]] == TOKENS
    usage = deltas[-1].usage
    assert usage is not None and usage.output_tokens == 3
    assert usage.total_tokens == usage.input_tokens + 3
    assert deltas[-1].model == "yandexgpt-lite 23.10.2024"


async def test_content_filter_line_replaces_the_text_with_the_refusal(
    yandex_fake: YandexFake,
) -> None:
    yandex_fake.script = Script(tokens=TOKENS, finish_reason="content_filter")

    deltas = [d async for d in make_yandex(yandex_fake).stream(REQUEST)]
    answer = await collect(make_yandex(yandex_fake), REQUEST)

    assert any(d.replaces and d.text == REFUSAL for d in deltas)
    assert answer.text == REFUSAL
    assert answer.finish_reason == "content_filter"


async def test_a_rewritten_line_replaces_the_text_and_a_repeated_line_adds_nothing(
    yandex_fake: YandexFake,
) -> None:
    yandex_fake.script = Script(tokens=TOKENS, rewrite_at=1, repeat_at=2)

    deltas = [d async for d in make_yandex(yandex_fake).stream(REQUEST)]
    text = ""
    for delta in deltas:
        text = apply_delta(text, delta)

    assert [d.replaces for d in deltas].count(True) == 1
    assert all(d.text for d in deltas[:-1])
    assert text == "Иначе говоря: Привет! Чем могу помочь?"


async def test_error_line_mid_stream_raises_after_the_partial_text(yandex_fake: YandexFake) -> None:
    yandex_fake.script = Script(tokens=TOKENS, error_line_after=2)
    text = ""

    with pytest.raises(ProviderUnavailable, match="mid-answer"):
        async for delta in make_yandex(yandex_fake).stream(REQUEST):
            text = apply_delta(text, delta)

    assert text == "Привет! Чем могу"


async def test_expired_iam_token_gives_an_auth_error_that_says_how_long_tokens_live(
    yandex_fake: YandexFake,
) -> None:
    yandex_fake.iam_expires_after = 0
    provider = make_yandex(yandex_fake, api_key="", iam_token=yandex_fake.iam_token)

    with pytest.raises(ProviderAuthError, match="12 hours"):
        await collect(provider, REQUEST)


async def test_folder_mismatch_gives_a_bad_request_naming_both_folders(
    yandex_fake: YandexFake,
) -> None:
    provider = make_yandex(yandex_fake, send_folder_header=True, folder_id="b1gfakefolder")
    provider.folder_id = "b1gother"
    request = replace(REQUEST, model="gpt://b1gfakefolder/yandexgpt/latest")

    with pytest.raises(ProviderBadRequest, match="does not match"):
        await collect(provider, request)


async def test_open_weight_models_go_through_the_openai_compatible_endpoint(
    yandex_fake: YandexFake,
) -> None:
    answer = await collect(make_yandex(yandex_fake), replace(REQUEST, model="qwen3-235b-a22b-fp8"))

    sent = yandex_fake.requests_to("/v1/chat/completions")[0]
    assert sent.json()["model"] == "gpt://b1gfakefolder/qwen3-235b-a22b-fp8/latest"
    assert sent.headers["authorization"] == "Api-Key fake-yandex-api-key"
    assert "Привет!" in answer.text


async def test_model_list_has_lite_and_pro_and_the_openai_compatible_models(
    yandex_fake: YandexFake,
) -> None:
    ids = [m.id for m in await make_yandex(yandex_fake).list_models()]

    assert ids[:2] == ["yandexgpt-lite", "yandexgpt"]
    assert "qwen3-235b-a22b-fp8/latest" in ids
    assert yandex_fake.requests_to("/v1/models")[0].headers["openai-project"] == "b1gfakefolder"


async def test_too_many_concurrent_generations_give_rate_limited(yandex_fake: YandexFake) -> None:
    yandex_fake.max_in_flight = 0
    provider = make_yandex(yandex_fake)

    with pytest.raises(ProviderRateLimited, match="rate limiting"):
        await collect(provider, REQUEST)
