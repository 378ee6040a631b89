"""Honest defaults (issue 14, point 5), in process: password rules, the admin's login behind the
rate-limited one, who may read /metrics, and what /readyz tells. Start-up defaults (DEBUG, the
generated key, the proxy count) are in test_startup.py: they need a fresh process."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


# --- passwords ----------------------------------------------------------------------------------


def signup(client: Any, password: str) -> Any:
    return client.post(
        "/accounts/signup/",
        {
            "email": "new@example.com",
            "username": "newbie",
            "password1": password,
            "password2": password,
        },
    )


@pytest.mark.parametrize(
    "password,message",
    [
        ("password12", "This password is too common."),
        ("Xq7!pz3", "This password is too short. It must contain at least 10 characters."),
        ("4815162342108", "This password is entirely numeric."),
        ("newbie1234", "The password is too similar to the username."),
    ],
)
def test_signup_refuses_a_weak_password_with_the_validators_message(client, password, message):
    response = signup(client, password)

    assert response.status_code == 200  # the form again, with the reason
    assert message in response.content.decode()
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_signup_accepts_a_long_uncommon_password(client):
    assert signup(client, "a long passphrase 991").status_code == 302


def test_the_first_administrators_generated_password_passes_the_validators(settings):
    settings.ADMIN_PASSWORD = ""
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    password = out.getvalue().rsplit(": ", 1)[1].strip()
    admin = get_user_model().objects.get(username=settings.ADMIN_USERNAME)

    validate_password(password, admin)  # raises when it does not pass


def test_a_weak_configured_admin_password_is_refused(settings):
    settings.ADMIN_PASSWORD = "password123"

    with pytest.raises(CommandError, match="ADMIN_PASSWORD is refused: This password is too"):
        call_command("ensure_admin", stdout=io.StringIO())
    assert not get_user_model().objects.filter(is_superuser=True).exists()


# --- the admin's login --------------------------------------------------------------------------


def admin_login(client: Any, username: str, password: str) -> Any:
    """Signs in to the admin as a person does: open /admin/, fill in the form it leads to."""
    page = client.get("/admin/", follow=True)
    form_url = page.redirect_chain[-1][0]
    return client.post(
        form_url, {"username": username, "login": username, "password": password}, follow=True
    )


def test_the_admin_login_is_rate_limited_like_the_sites(client, django_user_model, password):
    django_user_model.objects.create_superuser("root", "root@example.com", password)

    for _ in range(5):
        admin_login(client, "root", "not the password")
    refused = admin_login(client, "root", password)  # the right one, after five failures

    assert "Too many failed login attempts" in refused.content.decode()
    assert client.get("/admin/").status_code == 302  # still signed out


def test_the_admin_login_form_does_not_check_passwords_itself(client, django_user_model, password):
    django_user_model.objects.create_superuser("root", "root@example.com", password)

    response = client.post("/admin/login/", {"username": "root", "password": password})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert client.get("/admin/").status_code == 302  # not signed in by the admin's own form


def test_a_staff_user_reaches_the_admin_through_the_sites_login(
    client, django_user_model, password
):
    django_user_model.objects.create_superuser("root", "root@example.com", password)

    admin_login(client, "root", password)

    assert client.get("/admin/").status_code == 200


# --- /metrics -----------------------------------------------------------------------------------

PROMETHEUS = "raggen_http_requests_total"
OUTSIDE = "203.0.113.7"


def test_metrics_answer_a_client_on_this_machine(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200 and PROMETHEUS in response.content.decode()
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_metrics_refuse_a_remote_client_without_the_token(client, settings):
    settings.METRICS_TOKEN = "metrics-secret-1"

    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 403
    wrong = client.get(
        "/metrics", REMOTE_ADDR=OUTSIDE, headers={"Authorization": "Bearer metrics-secret-2"}
    )
    assert wrong.status_code == 403
    assert PROMETHEUS not in wrong.content.decode()


def test_metrics_answer_the_bearer_token_from_anywhere(client, settings):
    settings.METRICS_TOKEN = "metrics-secret-1"

    response = client.get(
        "/metrics", REMOTE_ADDR=OUTSIDE, headers={"Authorization": "Bearer metrics-secret-1"}
    )

    assert response.status_code == 200 and PROMETHEUS in response.content.decode()


def test_metrics_without_a_token_configured_refuse_remote_clients(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 403
    empty = client.get("/metrics", REMOTE_ADDR=OUTSIDE, headers={"Authorization": "Bearer "})
    assert empty.status_code == 403


def test_behind_the_proxy_only_the_token_opens_metrics(client, settings):
    # The proxy connects from this machine: a local address proves nothing there.
    settings.BEHIND_TLS_PROXY = True
    settings.METRICS_TOKEN = "metrics-secret-1"

    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    with_token = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", headers={"Authorization": "Bearer metrics-secret-1"}
    )
    assert with_token.status_code == 200


# --- /readyz ------------------------------------------------------------------------------------


def test_readyz_names_the_failing_part_without_its_error(client, monkeypatch, caplog):
    from raggen import health

    def broken() -> None:
        raise RuntimeError("could not connect to db.internal:5432 as raggen:hunter2")

    monkeypatch.setattr(health, "_check_database", broken)

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    assert body["checks"]["database"] == "fail"
    assert body["checks"]["embedding_model"] == "ok"
    assert "hunter2" not in response.content.decode()
    assert "db.internal" not in response.content.decode()
    assert "hunter2" in caplog.text  # the operator finds it in the log


def test_readyz_names_unwritable_index_storage(client, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings.INDEX_DIR = blocker / "indexes"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["index_storage"]
    assert str(tmp_path) not in response.content.decode()
