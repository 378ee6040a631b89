"""Provider settings kept in the admin: encrypted at rest, never shown again, winning over the
environment, and used by a real answer against the loopback GigaChat fake."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from core.errors import InvalidInput
from provider_settings import secrets as provider_secrets
from provider_settings.models import ProviderSecret
from providers.base import ChatMessage, ChatRequest
from providers.fakes import GigaChatFake
from providers.registry import get_provider, provider_statuses

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN = "admin:provider_settings_providersecret"


@pytest.fixture(autouse=True)
def secrets_key(settings: Any) -> Iterator[None]:
    settings.PROVIDER_SECRETS_KEY = "a test key, not a real one"
    settings.GIGACHAT_CREDENTIALS = ""
    provider_secrets.refresh()
    yield
    settings.PROVIDER_SECRETS_KEY = ""
    provider_secrets.refresh()


@pytest.fixture
def gigachat(settings: Any) -> Iterator[GigaChatFake]:
    with GigaChatFake() as fake:
        settings.GIGACHAT_AUTH_URL = fake.auth_url
        settings.GIGACHAT_BASE_URL = fake.base_url
        settings.LLM_MAX_RETRIES = 0
        yield fake


def _configured(name: str) -> bool:
    return next(s.configured for s in provider_statuses() if s.name == name)


def _answer(provider: Any) -> str:
    async def collect() -> str:
        request = ChatRequest(messages=(ChatMessage("user", "Привет"),))
        text = ""
        async for event in provider.stream(request):
            text += getattr(event, "text", "")
        return text

    return asyncio.run(collect())


def test_a_key_set_in_the_admin_configures_the_provider_and_answers(staff_client, gigachat):
    assert not _configured("gigachat")

    response = staff_client.post(
        reverse(f"{ADMIN}_add"),
        {"name": "GIGACHAT_CREDENTIALS", "value": gigachat.credentials},
    )

    assert response.status_code == 302, response.content[:500]
    assert _configured("gigachat")
    assert _answer(get_provider("gigachat"))  # the fake accepted the stored credentials


def test_the_value_is_stored_encrypted_and_never_shown_again(staff_client, gigachat):
    provider_secrets.provider_secret_set(name="GIGACHAT_CREDENTIALS", value=gigachat.credentials)
    secret = ProviderSecret.objects.get()

    assert gigachat.credentials not in secret.ciphertext
    change = staff_client.get(reverse(f"{ADMIN}_change", args=[secret.pk]))
    listing = staff_client.get(reverse(f"{ADMIN}_changelist"))
    for page in (change, listing):
        assert page.status_code == 200
        assert gigachat.credentials not in page.content.decode()
        assert secret.ciphertext not in page.content.decode()
    assert "set (hidden)" in listing.content.decode()


def test_saving_the_form_empty_keeps_the_stored_value(staff_client):
    provider_secrets.provider_secret_set(name="OPENAI_API_KEY", value="sk-first")
    secret = ProviderSecret.objects.get()

    staff_client.post(reverse(f"{ADMIN}_change", args=[secret.pk]), {"value": ""})
    assert provider_secrets.overrides()["OPENAI_API_KEY"] == "sk-first"

    staff_client.post(
        reverse(f"{ADMIN}_change", args=[secret.pk]),
        {"value": "sk-second"},
    )
    assert provider_secrets.overrides()["OPENAI_API_KEY"] == "sk-second"


def test_the_admin_value_wins_over_the_environment_and_deleting_it_restores_it(settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:1/v1"
    provider_secrets.provider_secret_set(name="OPENAI_BASE_URL", value="http://127.0.0.1:2/v1")
    assert get_provider("openai").base_url.startswith("http://127.0.0.1:2/")  # type: ignore[attr-defined]

    provider_secrets.provider_secret_delete(secret=ProviderSecret.objects.get())
    assert get_provider("openai").base_url.startswith("http://127.0.0.1:1/")  # type: ignore[attr-defined]


def test_values_are_read_from_async_code_too(gigachat):
    provider_secrets.provider_secret_set(name="GIGACHAT_CREDENTIALS", value=gigachat.credentials)
    provider_secrets._loaded_at = float("-inf")  # stale: the next read loads again

    async def inside_the_event_loop() -> bool:
        return bool(provider_secrets.overrides().get("GIGACHAT_CREDENTIALS"))

    assert asyncio.run(inside_the_event_loop())


def test_in_the_event_loop_a_stale_snapshot_is_served_while_it_reloads(gigachat, monkeypatch):
    import threading
    import time

    provider_secrets.refresh()  # loaded once, without the value
    provider_secrets.provider_secret_set(name="GIGACHAT_CREDENTIALS", value=gigachat.credentials)
    provider_secrets._snapshot = {}  # as another process would still see it
    provider_secrets._loaded_at = time.monotonic() - 60  # stale
    release = threading.Event()
    real_load = provider_secrets._load

    def slow_load() -> dict[str, str]:
        assert release.wait(10)
        return real_load()

    monkeypatch.setattr(provider_secrets, "_load", slow_load)

    async def read() -> bool:
        return bool(provider_secrets.overrides().get("GIGACHAT_CREDENTIALS"))

    assert asyncio.run(read()) is False  # served at once, the old snapshot
    release.set()
    pending = provider_secrets._pending
    assert pending is not None
    pending.result(timeout=10)
    assert asyncio.run(read()) is True  # the reload has landed


def test_without_a_key_nothing_can_be_stored(settings, staff_client):
    settings.PROVIDER_SECRETS_KEY = ""

    with pytest.raises(InvalidInput, match="PROVIDER_SECRETS_KEY"):
        provider_secrets.provider_secret_set(name="OPENAI_API_KEY", value="sk-x")
    response = staff_client.post(
        reverse(f"{ADMIN}_add"),
        {"name": "OPENAI_API_KEY", "value": "sk-x"},
    )
    assert response.status_code == 200
    assert "PROVIDER_SECRETS_KEY" in response.content.decode()
    assert not ProviderSecret.objects.exists()


def test_unknown_names_and_empty_values_are_refused():
    with pytest.raises(InvalidInput):
        provider_secrets.provider_secret_set(name="SECRET_KEY", value="x")
    with pytest.raises(InvalidInput):
        provider_secrets.provider_secret_set(name="OPENAI_API_KEY", value="  ")


def test_a_value_from_another_key_is_ignored_with_a_warning_naming_only_the_setting(
    settings, caplog
):
    provider_secrets.provider_secret_set(name="OPENAI_API_KEY", value="sk-very-secret")
    settings.PROVIDER_SECRETS_KEY = "another key"

    with caplog.at_level(logging.WARNING, logger="provider_settings.secrets"):
        provider_secrets.refresh()

    assert provider_secrets.overrides() == {}
    assert "OPENAI_API_KEY" in caplog.text
    assert "sk-very-secret" not in caplog.text


def test_non_staff_cannot_open_the_provider_settings(alice_client):
    response = alice_client.get(reverse(f"{ADMIN}_changelist"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_providers_page_points_to_the_provider_settings(staff_client):
    page = staff_client.get(reverse("admin_providers")).content.decode()
    assert reverse(f"{ADMIN}_changelist") in page
