from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_ensure_admin_generates_and_prints_a_password_once(settings):
    settings.ADMIN_PASSWORD = ""
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    text = out.getvalue()
    password = text.rsplit(": ", 1)[1].strip()
    admin = get_user_model().objects.get(username=settings.ADMIN_USERNAME)
    assert admin.is_superuser and admin.check_password(password)
    again = io.StringIO()
    call_command("ensure_admin", stdout=again)
    assert "already exists" in again.getvalue()
    assert password not in again.getvalue()


def test_ensure_admin_uses_the_configured_password(settings):
    settings.ADMIN_PASSWORD = "from the environment 1"
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    admin = get_user_model().objects.get(username=settings.ADMIN_USERNAME)
    assert admin.check_password("from the environment 1")
    assert "from the environment 1" not in out.getvalue()
