"""The read-only providers page in the admin: each provider, its state and its models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from providers.fakes import OpenAIFake

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def openai_fake(settings: Any) -> Iterator[OpenAIFake]:
    with OpenAIFake() as fake:
        settings.OPENAI_BASE_URL = f"{fake.url}/v1"
        settings.OPENAI_MODEL = fake.models[0]
        settings.OPENAI_API_KEY = ""
        settings.LLM_MAX_RETRIES = 0
        yield fake


def test_the_providers_page_lists_each_provider_its_state_and_its_models(
    staff_client, settings, openai_fake
):
    settings.GIGACHAT_CREDENTIALS = ""
    settings.YANDEX_API_KEY = settings.YANDEX_IAM_TOKEN = ""

    response = staff_client.get(reverse("admin_providers"))

    assert response.status_code == 200
    rows = {r.status.name: r for r in response.context["rows"]}
    assert set(rows) == {"offline", "yandexgpt", "gigachat", "openai"}
    assert rows["offline"].status.configured and not rows["gigachat"].status.configured
    assert [m.id for m in rows["offline"].models] == ["offline-extractive"]
    assert [m.id for m in rows["openai"].models] == list(openai_fake.models)
    assert rows["gigachat"].models == () and rows["gigachat"].models_error == ""
    html = response.content.decode()
    assert "GIGACHAT_CREDENTIALS" in html and "YANDEX_FOLDER_ID" in html
    assert len(openai_fake.requests_to("/v1/models")) == 1
    assert reverse("admin_providers") in staff_client.get(reverse("admin:index")).content.decode()


def test_the_providers_page_says_why_a_provider_could_not_list_its_models(
    staff_client, openai_fake
):
    openai_fake.fail(401, path="/v1/models")

    response = staff_client.get(reverse("admin_providers"))

    row = next(r for r in response.context["rows"] if r.status.name == "openai")
    assert row.models == () and row.models_error
    assert row.models_error in response.content.decode()


def test_the_providers_page_is_for_staff_only(alice_client):
    response = alice_client.get(reverse("admin_providers"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
