"""The token endpoints: list, create (session only), revoke (own tokens only)."""

from __future__ import annotations

import pytest

from accounts.models import ApiToken
from accounts.tests.conftest import bearer

pytestmark = pytest.mark.django_db


def test_creating_a_token_returns_its_plaintext_once(alice_client, alice):
    response = alice_client.post(
        "/api/v1/tokens", {"name": "laptop", "scope": "write"}, content_type="application/json"
    )

    assert response.status_code == 201
    body = response.json()
    assert body["plaintext"].startswith(f"rg_{body['token']['prefix']}_")
    assert body["token"]["scope"] == "write"
    listed = alice_client.get("/api/v1/tokens").json()
    assert [t["name"] for t in listed] == ["laptop"]
    assert body["plaintext"] not in str(listed)


def test_a_token_cannot_mint_tokens(client, write_token):
    response = client.post(
        "/api/v1/tokens",
        {"name": "child"},
        content_type="application/json",
        **bearer(write_token[1]),
    )

    assert response.status_code == 401
    assert ApiToken.objects.count() == 1


def test_an_expiry_in_the_past_is_refused(alice_client):
    response = alice_client.post(
        "/api/v1/tokens",
        {"name": "x", "expires_at": "2001-01-01T00:00:00Z"},
        content_type="application/json",
    )

    assert response.status_code == 422
    assert response.json()["detail"] == "The expiry date must be in the future."


def test_revoking_a_token_stops_it(alice_client, client, write_token):
    token, plaintext = write_token

    response = alice_client.delete(f"/api/v1/tokens/{token.pk}")

    assert response.status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get("/api/v1/tokens", **bearer(plaintext)).status_code == 401


def test_bob_cannot_revoke_alices_token(client, bob, write_token):
    client.force_login(bob)

    response = client.delete(f"/api/v1/tokens/{write_token[0].pk}")

    assert response.status_code == 404
    write_token[0].refresh_from_db()
    assert write_token[0].revoked_at is None


def test_bob_does_not_see_alices_tokens(client, bob, write_token):
    client.force_login(bob)

    assert client.get("/api/v1/tokens").json() == []
