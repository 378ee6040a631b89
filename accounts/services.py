"""Writes of the accounts app: creating and revoking API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import ApiToken, ApiTokenScope
from raggen.errors import InvalidInput

TOKEN_PREFIX = "rg_"
# last_used_at is written at most this often per token, so that busy clients do not turn every
# read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_hash(plaintext: str) -> str:
    """The stored form of a token: the hex SHA-256 of the full plaintext."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def api_token_create(
    *,
    user: Any,
    name: str,
    scope: str = ApiTokenScope.READ,
    expires_at: datetime | None = None,
    request: HttpRequest | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` and return it with its plaintext ``rg_<prefix>_<secret>``.
    The plaintext is not stored anywhere; the caller shows it once. Raises ``InvalidInput`` for
    an empty name, an unknown scope or an expiry in the past."""
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("The expiry date must be in the future.")
    prefix = secrets.token_hex(4)
    plaintext = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        user=user,
        name=name.strip(),
        prefix=prefix,
        hashed_secret=api_token_hash(plaintext),
        scope=scope,
        expires_at=expires_at,
    )
    try:
        token.full_clean()
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages)) from exc
    with transaction.atomic():
        token.save()
    return token, plaintext


def api_token_revoke(
    token: ApiToken, *, actor: Any = None, request: HttpRequest | None = None
) -> None:
    """Revoke ``token``: it is refused from now on. Revoking twice keeps the first time."""
    if token.revoked_at is not None:
        return
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])


def api_token_touch(token: ApiToken) -> None:
    """Record that ``token`` was used now, unless that was already recorded within the last
    minute. One conditional UPDATE; safe under concurrent requests."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk, last_used_at=token.last_used_at).update(last_used_at=now)
    token.last_used_at = now
