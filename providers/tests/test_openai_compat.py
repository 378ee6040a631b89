from __future__ import annotations

import pytest

from providers.base import ChatMessage, ChatRequest, collect
from providers.errors import ProviderError
from providers.fakes import OpenAIFake, Script
from providers.tests.conftest import make_openai

REQUEST = ChatRequest(messages=(ChatMessage("user", "Hello"),))


async def test_local_server_without_a_key_gets_no_authorization_header() -> None:
    with OpenAIFake() as fake:
        await collect(make_openai(fake, api_key=""), REQUEST)

        assert "authorization" not in fake.requests[0].headers


async def test_key_is_sent_as_bearer_and_the_body_is_the_openai_shape(
    openai_fake: OpenAIFake,
) -> None:
    await collect(make_openai(openai_fake, max_tokens=64), REQUEST)

    sent = openai_fake.requests_to("/v1/chat/completions")[0]
    assert sent.headers["authorization"] == "Bearer sk-local-test"
    assert sent.json() == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
        "temperature": 0.3,
        "max_tokens": 64,
    }


async def test_usage_from_the_usage_only_chunk_after_the_finish_chunk_is_reported(
    openai_fake: OpenAIFake,
) -> None:
    openai_fake.script = Script(tokens=["a", "b", "c"])

    answer = await collect(make_openai(openai_fake), REQUEST)

    assert answer.usage.output_tokens == 3
    assert answer.usage.total_tokens == answer.usage.input_tokens + 3


async def test_models_come_from_the_servers_model_list(openai_fake: OpenAIFake) -> None:
    models = await make_openai(openai_fake).list_models()

    assert [m.id for m in models] == ["llama3.2", "qwen2.5:7b"]


async def test_without_a_configured_model_the_servers_first_model_is_used(
    openai_fake: OpenAIFake,
) -> None:
    answer = await collect(make_openai(openai_fake, model=""), REQUEST)

    assert answer.model == "llama3.2"
    assert openai_fake.requests_to("/v1/chat/completions")[0].json()["model"] == "llama3.2"


async def test_a_server_without_models_and_no_configured_model_says_so(
    openai_fake: OpenAIFake,
) -> None:
    openai_fake.models = []

    with pytest.raises(ProviderError, match="serves no models and none is configured"):
        await collect(make_openai(openai_fake, model=""), REQUEST)
