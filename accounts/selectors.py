"""Reads of the accounts app: a user's tokens, one token with its access check."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import ApiToken
from accounts.services import TOKEN_PREFIX, api_token_hash
from core.errors import NotFound


def api_token_list_for_user(*, user: Any) -> QuerySet[ApiToken]:
    """``user``'s tokens, newest first, revoked ones included."""
    return ApiToken.objects.filter(user=user)


def api_token_get_for_user(*, user: Any, token_id: int) -> ApiToken:
    """``user``'s token ``token_id``. Raises ``NotFound`` when it is missing or someone else's,
    so that ids do not leak."""
    token = ApiToken.objects.filter(user=user, pk=token_id).first()
    if token is None:
        raise NotFound(_("API token not found."))
    return token


def api_token_get_by_plaintext(*, plaintext: str) -> ApiToken | None:
    """The token whose plaintext is ``plaintext`` (with its user), or None. Does not check
    whether it is revoked or expired."""
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    return (
        ApiToken.objects.select_related("user")
        .filter(hashed_secret=api_token_hash(plaintext=plaintext))
        .first()
    )
