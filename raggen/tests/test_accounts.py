from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

pytestmark = pytest.mark.django_db


def test_pages_redirect_anonymous_users_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_api_answers_401_json_to_anonymous_users(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 401  # the schema is read like the API: a session or a token
    assert response.json() == {"detail": "Sign in or send a valid API token."}
    response = client.get("/api/v1/docs")
    assert response.status_code == 302  # the docs are a page: login first
    response = client.post("/api/v1/embed", {"texts": ["x"]}, content_type="application/json")
    assert response.status_code in (401, 404)
    if response.status_code == 401:
        assert response.json() == {"detail": "Sign in or send a valid API token."}


def test_login_and_signup_pages_are_public(client):
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/accounts/signup/").status_code == 200
    assert client.get("/accounts/password/reset/").status_code == 200


def test_signup_creates_an_account_and_signs_in(client):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "new@example.com",
            "username": "newbie",
            "password1": "a long passphrase 991",
            "password2": "a long passphrase 991",
        },
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="newbie", email="new@example.com").exists()
    assert client.get("/").status_code == 200


def test_login_with_email_then_logout(client, alice, password):
    response = client.post("/accounts/login/", {"login": "alice@example.com", "password": password})
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    assert "alice" in home.content.decode()
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_with_a_message(client, alice):
    response = client.post("/accounts/login/", {"login": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode()


def test_password_reset_sends_a_working_link(client, alice):
    client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert len(mail.outbox) == 1
    link = re.search(
        r"http://testserver(/accounts/password/reset/key/\S+)", str(mail.outbox[0].body)
    )
    assert link is not None
    response = client.get(link.group(1), follow=True)
    assert response.status_code == 200
    form_url = response.redirect_chain[-1][0] if response.redirect_chain else link.group(1)
    response = client.post(
        form_url, {"password1": "brand new secret 77", "password2": "brand new secret 77"}
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("brand new secret 77")


def test_signup_can_be_closed(client, settings):
    settings.ACCOUNT_ALLOW_SIGNUP = False
    response = client.get("/accounts/signup/")
    assert "closed" in response.content.decode().lower()


def test_admin_needs_a_staff_account(client, alice):
    client.force_login(alice)
    response = client.get("/admin/")
    assert response.status_code == 302
    alice.is_staff = True
    alice.is_superuser = True
    alice.save()
    assert client.get("/admin/").status_code == 200
