"""The API-token page: lists, creates (showing the token once) and revokes with HTML forms."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import ApiToken

pytestmark = pytest.mark.django_db


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/account/tokens/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_page_shows_a_new_token_once(alice_client):
    response = alice_client.post(
        "/account/tokens/", {"name": "laptop", "scope": "read", "expires_in_days": "30"}
    )

    html = response.content.decode()
    token = ApiToken.objects.get()
    assert response.status_code == 200
    assert token.expires_at is not None
    plaintext = html.split('<code id="new-token-value">')[1].split("</code>")[0]
    assert plaintext.startswith(f"rg_{token.prefix}_")
    again = alice_client.get("/account/tokens/").content.decode()
    assert "laptop" in again
    assert plaintext not in again


def test_a_create_without_a_name_is_refused(alice_client):
    response = alice_client.post("/account/tokens/", {"name": " ", "scope": "read"})

    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_the_forms_need_a_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post("/account/tokens/", {"name": "x", "scope": "read"})

    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_revoking_from_the_page(alice_client, write_token):
    response = alice_client.post(f"/account/tokens/{write_token[0].pk}/revoke/", follow=True)

    write_token[0].refresh_from_db()
    assert write_token[0].revoked_at is not None
    assert "Revoked" in response.content.decode()


def test_bob_cannot_revoke_alices_token_from_the_page(client, bob, write_token):
    client.force_login(bob)

    response = client.post(f"/account/tokens/{write_token[0].pk}/revoke/")

    assert response.status_code == 404
    write_token[0].refresh_from_db()
    assert write_token[0].revoked_at is None


def test_the_page_speaks_russian(alice_client, write_token):
    html = alice_client.get("/account/tokens/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    assert "API-токены" in html
    assert "Отозвать" in html
