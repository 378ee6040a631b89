"""Writes of the accounts app: the audit trail, creating and revoking API tokens, and users'
access (active, staff)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ApiToken, ApiTokenScope, AuditAction, AuditEvent
from core.errors import InvalidInput

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "rg_"
# last_used_at is written at most this often per token, so that busy clients do not turn every
# read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def audit(
    *,
    action: AuditAction | str,
    actor: Any,
    request: HttpRequest | None = None,
    target: str = "",
    **details: Any,
) -> AuditEvent:
    """Record ``action`` by ``actor`` (a user, or None/anonymous when unknown) on ``target``
    (a short description, cut to 300 characters). With a request, its client IP and user agent
    are recorded too. ``details`` must be JSON-serialisable; never pass secrets."""
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    ip, user_agent = _client(request)
    event = AuditEvent.objects.create(
        actor_id=actor_id,
        action=AuditAction(action),
        ip=ip,
        user_agent=user_agent,
        target=target[:300],
        details=details,
    )
    logger.info("audit %s actor=%s target=%s", event.action, actor_id, event.target)
    return event


def _client(request: HttpRequest | None) -> tuple[str | None, str]:
    if request is None:
        return None, ""
    # REMOTE_ADDR only: X-Forwarded-For is trivially forged unless a trusted proxy sets it.
    ip: str | None = request.META.get("REMOTE_ADDR") or None
    if ip is not None:
        try:
            validate_ipv46_address(ip)
        except ValidationError:
            ip = None
    return ip, str(request.META.get("HTTP_USER_AGENT", ""))[:300]


def api_token_hash(*, plaintext: str) -> str:
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
        raise InvalidInput(_("The expiry date must be in the future."))
    prefix = secrets.token_hex(4)
    plaintext = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        user=user,
        name=name.strip(),
        prefix=prefix,
        hashed_secret=api_token_hash(plaintext=plaintext),
        scope=scope,
        expires_at=expires_at,
    )
    try:
        token.full_clean()
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages)) from exc
    with transaction.atomic():
        token.save()
        audit(
            action=AuditAction.TOKEN_CREATED,
            actor=user,
            request=request,
            target=str(token),
            token_id=token.pk,
            scope=token.scope,
            expires_at=token.expires_at,
        )
    return token, plaintext


def api_token_revoke(
    *, token: ApiToken, actor: Any = None, request: HttpRequest | None = None
) -> None:
    """Revoke ``token``: it is refused from now on. Revoking twice keeps the first time (and is
    audited once). ``actor`` is who revoked it: the owner, or staff in the admin."""
    if token.revoked_at is not None:
        return
    token.revoked_at = timezone.now()
    with transaction.atomic():
        token.save(update_fields=["revoked_at"])
        audit(
            action=AuditAction.TOKEN_REVOKED,
            actor=actor,
            request=request,
            target=str(token),
            token_id=token.pk,
            owner_id=token.user_id,
        )


def api_token_touch(*, token: ApiToken) -> None:
    """Record that ``token`` was used now, unless that was already recorded within the last
    minute. One conditional UPDATE; safe under concurrent requests."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk, last_used_at=token.last_used_at).update(last_used_at=now)
    token.last_used_at = now


def user_set_access(
    *,
    users: Sequence[Any],
    actor: Any,
    request: HttpRequest | None = None,
    is_active: bool | None = None,
    is_staff: bool | None = None,
) -> int:
    """Activate or deactivate ``users`` and/or grant or remove their staff status (None: leave
    as is); returns how many changed. An inactive user cannot sign in and their API tokens are
    refused. Raises ``InvalidInput``, changing nobody, when ``actor`` would deactivate themself
    or remove their own staff status (an administrator cannot lock themself out)."""
    removing = is_active is False or is_staff is False
    if actor is not None and removing and any(user.pk == actor.pk for user in users):
        raise InvalidInput(_("You cannot deactivate yourself or remove your own staff status."))
    wanted = {k: v for k, v in (("is_active", is_active), ("is_staff", is_staff)) if v is not None}
    changed = 0
    with transaction.atomic():
        for user in users:
            fields = [k for k, v in wanted.items() if getattr(user, k) != v]
            if not fields:
                continue
            for name in fields:
                setattr(user, name, wanted[name])
            user.save(update_fields=fields)
            changed += 1
    logger.info("user access %s set on %d users by %s", wanted, changed, getattr(actor, "pk", None))
    return changed
