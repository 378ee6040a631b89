"""Token services: the plaintext is stored nowhere, only its SHA-256."""

from __future__ import annotations

import hashlib

import pytest
from django.core import serializers
from django.db import connection

from accounts.models import ApiToken
from accounts.services import api_token_create

pytestmark = pytest.mark.django_db


def test_the_token_is_stored_hashed_and_its_plaintext_nowhere(alice):
    token, plaintext = api_token_create(user=alice, name="CI", scope="write")

    prefix, _, secret = plaintext.removeprefix("rg_").partition("_")
    assert token.prefix == prefix
    assert len(prefix) == 8
    assert token.hashed_secret == hashlib.sha256(plaintext.encode()).hexdigest()
    dump = serializers.serialize("json", ApiToken.objects.all())
    assert secret not in dump
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        assert secret not in str(cursor.fetchall())


def test_each_token_is_unique(alice):
    first = api_token_create(user=alice, name="a")[1]
    second = api_token_create(user=alice, name="a")[1]

    assert first != second
