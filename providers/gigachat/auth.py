"""GigaChat's access: the OAuth token exchange and what TLS verifies against.

A token (:class:`GigaChatAuth`) is fetched with the Basic authorization key, a fresh ``RqUID``
per call and the scope; cached until 60 s before its ``expires_at`` (milliseconds); refreshed
under a lock so that concurrent chats cause one refresh. The chat adapter and the embeddings
encoder share it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

import httpx
from django.utils.translation import gettext, gettext_noop
from pydantic import BaseModel, ValidationError

from providers._http import (
    error_detail,
    error_for_status,
    parse_retry_after,
    redact,
    transport_error,
)
from providers.errors import ProviderAuthError, ProviderBadResponse, ProviderError

logger = logging.getLogger(__name__)

LABEL = "GigaChat"
SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")
AUTH_HINT = gettext_noop("Check GIGACHAT_CREDENTIALS (the authorization key) and GIGACHAT_SCOPE.")


@dataclasses.dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at_ms: int  # 0: never expires by time (a token given by the user)

    def usable(self, now_ms: int, buffer_ms: int) -> bool:
        return self.expires_at_ms == 0 or self.expires_at_ms > now_ms + buffer_ms


class _TokenResponse(BaseModel):
    access_token: str | None = None
    expires_at: int | None = None
    tok: str | None = None  # the {"tok", "exp"} variant of some auth deployments
    exp: int | None = None

    def token(self) -> AccessToken:
        value = self.access_token or self.tok
        expires = self.expires_at if self.access_token else self.exp
        if not value or expires is None:
            raise ProviderBadResponse(
                gettext("%(label)s's OAuth answer has no token.") % {"label": LABEL},
                provider="gigachat",
            )
        if expires < 10**11:  # seconds, not milliseconds (13 digits)
            expires *= 1000
        return AccessToken(value, expires)


class GigaChatAuth:
    """The OAuth token cache. ``refresh_before`` is the buffer (seconds) before expiry at
    which a token no longer counts as usable. Safe to share between event loops and threads."""

    def __init__(
        self,
        *,
        auth_url: str,
        credentials: str,
        scope: str,
        refresh_before: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if scope not in SCOPES:
            raise ProviderError(
                gettext("GIGACHAT_SCOPE must be one of %(scopes)s.") % {"scopes": ", ".join(SCOPES)}
            )
        self.auth_url = auth_url
        self.scope = scope
        self._credentials = credentials
        self._buffer_ms = int(refresh_before * 1000)
        self._clock = clock
        self._token: AccessToken | None = None
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._thread_lock = threading.Lock()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _cached(self, stale: str | None) -> str | None:
        token = self._token
        if token and token.value != stale and token.usable(self._now_ms(), self._buffer_ms):
            return token.value
        return None

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def token(self, client: httpx.AsyncClient, *, stale: str | None = None) -> str:
        """A usable access token, fetched if there is none, it expires within the buffer, or
        it is ``stale`` (a token the server just rejected). Concurrent callers wait for one
        fetch. Raises ``ProviderAuthError`` when the key or scope is rejected."""
        if (value := self._cached(stale)) is not None:
            return value
        async with self._lock():
            if (value := self._cached(stale)) is not None:
                return value
            try:
                response = await client.post(self.auth_url, **self._request_kwargs())
            except httpx.HTTPError as exc:
                raise transport_error(f"{LABEL} authorization", exc, started=False) from exc
            return self._store(response)

    def token_sync(self, client: httpx.Client, *, stale: str | None = None) -> str:
        """:meth:`token` for synchronous callers (the embeddings encoder)."""
        if (value := self._cached(stale)) is not None:
            return value
        with self._thread_lock:
            if (value := self._cached(stale)) is not None:
                return value
            try:
                response = client.post(self.auth_url, **self._request_kwargs())
            except httpx.HTTPError as exc:
                raise transport_error(f"{LABEL} authorization", exc, started=False) from exc
            return self._store(response)

    def _request_kwargs(self) -> dict[str, Any]:
        headers = {
            "Authorization": f"Basic {self._credentials}",
            "RqUID": str(uuid.uuid4()),  # a fresh one per call, or the server answers 400
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        return {"headers": headers, "data": {"scope": self.scope}}

    def _store(self, response: httpx.Response) -> str:
        if not response.is_success:
            raise self._error(response)
        try:
            token = _TokenResponse.model_validate_json(response.content).token()
        except ValidationError:
            raise ProviderBadResponse(
                gettext("%(label)s's OAuth answer is unreadable.") % {"label": LABEL}
            ) from None
        self._token = token
        logger.info("GigaChat access token refreshed; expires at %s ms", token.expires_at_ms)
        return token.value

    def _error(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        detail = redact(error_detail(response), [self._credentials])
        if status == 429 or status >= 500:
            return error_for_status(
                f"{LABEL} authorization", status, detail, retry_after=parse_retry_after(response)
            )
        return ProviderAuthError(
            gettext("%(label)s refused the authorization key: %(detail)s (HTTP %(status)s).")
            % {"label": LABEL, "detail": detail, "status": status}
            + " "
            + gettext(AUTH_HINT),
            provider="gigachat",
            status=status,
        )


def tls_verify(ca_bundle: str, verify_ssl: bool) -> bool | str:
    """What httpx should verify against: the CA bundle file if given (GigaChat's hosts use
    the Russian Trusted Root CA, absent from certifi), else the system store, or nothing when
    explicitly turned off, which is logged."""
    if not verify_ssl:
        logger.warning(
            "GigaChat TLS certificate verification is OFF (GIGACHAT_VERIFY_SSL=false): "
            "use GIGACHAT_CA_BUNDLE with the Russian Trusted Root CA instead"
        )
        return False
    return ca_bundle or True
