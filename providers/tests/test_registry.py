from __future__ import annotations

from typing import Any

import pytest

from providers.errors import ProviderNotConfigured, UnknownProvider
from providers.offline.chat import OfflineProvider
from providers.registry import get_provider, provider_statuses


def test_default_provider_is_offline_and_needs_no_key(settings: Any) -> None:
    settings.DEFAULT_PROVIDER = "offline"

    assert isinstance(get_provider(), OfflineProvider)


def test_provider_without_credentials_is_listed_as_not_configured_with_instructions(
    settings: Any,
) -> None:
    settings.YANDEX_API_KEY = settings.YANDEX_IAM_TOKEN = ""
    statuses = {s.name: s for s in provider_statuses()}

    assert set(statuses) == {"offline", "yandexgpt", "gigachat", "openai"}
    assert statuses["offline"].configured
    assert not statuses["yandexgpt"].configured
    assert "YANDEX_FOLDER_ID" in statuses["yandexgpt"].how_to_configure


def test_getting_an_unconfigured_provider_raises_a_clear_not_configured_error(
    settings: Any,
) -> None:
    settings.GIGACHAT_CREDENTIALS = ""

    with pytest.raises(
        ProviderNotConfigured, match=r"GigaChat is not configured.*GIGACHAT_CREDENTIALS"
    ):
        get_provider("gigachat")


def test_unknown_provider_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProvider, match="offline, yandexgpt, gigachat, openai"):
        get_provider("claude")


async def test_configured_provider_is_reused_so_the_gigachat_token_cache_survives(
    settings: Any, gigachat_fake: Any
) -> None:
    from providers.base import ChatMessage, ChatRequest, collect

    settings.GIGACHAT_CREDENTIALS = gigachat_fake.credentials
    settings.GIGACHAT_AUTH_URL = gigachat_fake.auth_url
    settings.GIGACHAT_BASE_URL = gigachat_fake.base_url
    request = ChatRequest(messages=(ChatMessage("user", "Привет"),))

    first = await collect(get_provider("gigachat"), request)
    await collect(get_provider("gigachat"), request)

    assert get_provider("gigachat") is get_provider("gigachat")
    assert first.provider == "gigachat" and first.model.startswith("GigaChat-2:")
    assert gigachat_fake.oauth_calls == 1
