"""API tokens authenticate the JSON API: end to end through Django's client, no session."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import api_token_revoke
from accounts.tests.conftest import bearer
from documents.models import KnowledgeBase

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_client():
    """A client without a session that enforces CSRF, as a script would be."""
    return Client(enforce_csrf_checks=True)


def test_a_token_authenticates_a_read_without_a_session(api_client, alice, write_token):
    KnowledgeBase.objects.create(owner=alice, name="Handbook")

    response = api_client.get("/api/v1/knowledge-bases", **bearer(write_token[1]))

    assert response.status_code == 200
    assert [kb["name"] for kb in response.json()] == ["Handbook"]


def test_a_write_token_posts_without_csrf_as_its_user(api_client, alice, write_token):
    response = api_client.post(
        "/api/v1/knowledge-bases",
        {"name": "From a script"},
        content_type="application/json",
        **bearer(write_token[1]),
    )

    assert response.status_code == 201
    assert KnowledgeBase.objects.get(name="From a script").owner == alice


def test_a_read_only_token_cannot_post(api_client, read_token):
    response = api_client.post(
        "/api/v1/knowledge-bases",
        {"name": "Nope"},
        content_type="application/json",
        **bearer(read_token[1]),
    )

    assert response.status_code == 403
    assert response.json()["detail"] == "This token is read-only."
    assert not KnowledgeBase.objects.exists()


def test_an_expired_token_gets_401_saying_so(api_client, expired_token):
    response = api_client.get("/api/v1/knowledge-bases", **bearer(expired_token[1]))

    assert response.status_code == 401
    assert response.json()["detail"] == "This API token has expired; create a new one."


def test_a_revoked_token_gets_401_saying_so(api_client, write_token):
    api_token_revoke(token=write_token[0])

    response = api_client.get("/api/v1/knowledge-bases", **bearer(write_token[1]))

    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


@pytest.mark.parametrize("plaintext", ["rg_deadbeef_nope", "something-else"])
def test_an_unknown_token_gets_401(api_client, write_token, plaintext):
    response = api_client.get("/api/v1/knowledge-bases", **bearer(plaintext))

    assert response.status_code == 401
    assert response.json()["detail"] == "This API token is not valid."


def test_a_token_of_a_deactivated_user_gets_401(api_client, alice, write_token):
    alice.is_active = False
    alice.save()

    response = api_client.get("/api/v1/knowledge-bases", **bearer(write_token[1]))

    assert response.status_code == 401


def test_last_used_is_recorded_at_most_once_a_minute(api_client, write_token):
    token, plaintext = write_token
    assert token.last_used_at is None

    api_client.get("/api/v1/knowledge-bases", **bearer(plaintext))
    token.refresh_from_db()
    first = token.last_used_at
    api_client.get("/api/v1/knowledge-bases", **bearer(plaintext))
    token.refresh_from_db()

    assert first is not None
    assert token.last_used_at == first

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    api_client.get("/api/v1/knowledge-bases", **bearer(plaintext))
    token.refresh_from_db()
    assert token.last_used_at > first - timedelta(seconds=1)
    assert token.last_used_at <= timezone.now()


def test_without_a_token_or_session_the_api_answers_401(api_client):
    response = api_client.get("/api/v1/knowledge-bases")

    assert response.status_code == 401
