"""Fixtures of the accounts tests: tokens of every kind for alice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import api_token_create


@pytest.fixture
def write_token(alice):
    return api_token_create(user=alice, name="CI", scope="write")


@pytest.fixture
def read_token(alice):
    return api_token_create(user=alice, name="reader", scope="read")


@pytest.fixture
def expired_token(alice):
    token, plaintext = api_token_create(
        user=alice, name="old", scope="write", expires_at=timezone.now() + timedelta(hours=1)
    )
    token.expires_at = timezone.now() - timedelta(seconds=1)
    token.save()
    return token, plaintext


def bearer(plaintext: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}
