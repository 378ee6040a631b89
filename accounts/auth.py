"""Bearer-token authentication for the JSON API (``Authorization: Bearer rg_...``)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import HttpBearer

from accounts.errors import ApiTokenRejected
from accounts.models import ApiToken, ApiTokenScope
from accounts.selectors import api_token_get_by_plaintext
from accounts.services import api_token_touch
from core.errors import PermissionDenied

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiTokenAuth(HttpBearer):
    """Accepts an active personal token and makes its user ``request.user``. Requests with a
    token need no CSRF token (they carry no cookie credentials). Raises ``ApiTokenRejected``
    (401) for an unknown, revoked or expired token and ``PermissionDenied`` (403) for a write
    with a read-only token. Without an ``Authorization`` header it steps aside for the session."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        api_token = api_token_get_by_plaintext(plaintext=token.strip())
        if api_token is None or not api_token.user.is_active:
            raise ApiTokenRejected(_("This API token is not valid."))
        if api_token.revoked_at is not None:
            raise ApiTokenRejected(_("This API token has been revoked; create a new one."))
        if api_token.is_expired:
            raise ApiTokenRejected(_("This API token has expired; create a new one."))
        if api_token.scope == ApiTokenScope.READ and request.method not in _SAFE_METHODS:
            raise PermissionDenied(_("This token is read-only."))
        api_token_touch(token=api_token)
        request.user = api_token.user
        return api_token
