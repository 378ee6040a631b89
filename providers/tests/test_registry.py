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


def test_every_adapter_row_names_a_class_that_loads() -> None:
    from providers import registry

    assert {n for kind, n in registry.ADAPTERS if kind == "chat"} == set(registry.PROVIDERS)
    assert {n for kind, n in registry.ADAPTERS if kind == "encoder"} == {"gigachat", "yandex"}
    for (kind, name), path in registry.ADAPTERS.items():
        cls = registry._adapter_class(kind, name)
        assert f"{cls.__module__}:{cls.__qualname__}" == path


class RecordingEncoder:
    def __init__(self, **options: Any) -> None:
        self.options = options


def test_get_encoder_builds_the_class_the_adapter_table_names(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from providers import registry

    settings.YANDEX_API_KEY, settings.YANDEX_FOLDER_ID = "key", "b1gfolder"
    monkeypatch.setitem(
        registry.ADAPTERS, ("encoder", "yandex"), f"{__name__}:{RecordingEncoder.__name__}"
    )
    monkeypatch.setattr(registry, "_encoders", {})

    encoder = registry.get_encoder("yandex")

    assert isinstance(encoder, RecordingEncoder)
    assert encoder.options["api_key"] == "key" and encoder.options["folder_id"] == "b1gfolder"


VENDOR_MODULES = """
import sys, django
django.setup()
from providers import registry

vendors = sorted({path.partition(":")[0] for path in registry.ADAPTERS.values()})
print([m for m in vendors if m in sys.modules])
registry.get_provider("offline")
print([m for m in vendors if m in sys.modules])
"""


def test_the_registry_imports_an_adapter_only_when_it_is_first_used() -> None:
    import subprocess
    import sys

    from conftest import ROOT, subprocess_env

    out = subprocess.run(
        [sys.executable, "-c", VENDOR_MODULES],
        env=subprocess_env(DEFAULT_PROVIDER="offline"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    before, after = out.stdout.strip().splitlines()[-2:]
    assert before == "[]"
    assert after == "['providers.offline.chat']"
