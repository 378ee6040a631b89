"""Adapter for GigaChat's v1 API (``/api/v1/chat/completions`` with SSE, ``/models``).

Access goes through an OAuth token (:class:`GigaChatAuth`): fetched with the Basic
authorization key, a fresh ``RqUID`` per call and the scope; cached until 60 s before its
``expires_at`` (milliseconds); refreshed under a lock so that concurrent chats cause one
refresh; and after a 401 refreshed once and the call retried once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import httpx
from django.utils.translation import gettext, gettext_noop
from pydantic import BaseModel, ValidationError

from providers._http import (
    DEFAULT_HTTP,
    HttpConfig,
    dump_json,
    error_detail,
    error_for_status,
    make_client,
    open_stream,
    parse_retry_after,
    redact,
    transport_error,
)
from providers._sse import sse_deltas
from providers.base import ChatRequest, Delta, ModelInfo
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


class GigaChatProvider:
    """``base_url`` ends in ``/api/v1``; ``auth_url`` is the full OAuth URL."""

    name = "gigachat"

    def __init__(
        self,
        *,
        base_url: str,
        auth_url: str,
        credentials: str,
        scope: str = "GIGACHAT_API_PERS",
        model: str = "GigaChat-2",
        temperature: float | None = 0.3,
        max_tokens: int | None = 2000,
        ca_bundle: str = "",
        verify_ssl: bool = True,
        http: HttpConfig = DEFAULT_HTTP,
        auth: GigaChatAuth | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.default_model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.http = dataclasses.replace(http, verify=tls_verify(ca_bundle, verify_ssl))
        self.auth = auth or GigaChatAuth(auth_url=auth_url, credentials=credentials, scope=scope)
        self._secrets = (credentials,)

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model or self.default_model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
        }
        temperature = request.temperature if request.temperature is not None else self.temperature
        if temperature is not None:
            # GigaChat wants temperature > 0; (0, 0.001] already means greedy decoding.
            body["temperature"] = max(temperature, 0.001)
        max_tokens = request.max_tokens or self.max_tokens
        if max_tokens:
            body["max_tokens"] = max_tokens
        return body

    def headers(self, token: str, *, stream: bool = False) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "X-Request-ID": str(uuid.uuid4()),
        }
        if stream:
            headers |= {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        return headers

    def _read_error(self, response: httpx.Response) -> ProviderError:
        return error_for_status(
            LABEL,
            response.status_code,
            redact(error_detail(response), [*self._secrets, *_bearer(response)]),
            retry_after=parse_retry_after(response),
            auth_hint=gettext(AUTH_HINT),
        )

    def _builder(
        self, client: httpx.AsyncClient, url: str, body: bytes, token: str
    ) -> Callable[[], httpx.Request]:
        headers = self.headers(token, stream=True)
        return lambda: client.build_request("POST", url, content=body, headers=headers)

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        body = dump_json(self.body(request))
        url = f"{self.base_url}/chat/completions"
        model = request.model or self.default_model
        async with make_client(self.http) as client:
            stale: str | None = None
            for attempt in range(2):
                token = await self.auth.token(client, stale=stale)
                opened = False
                try:
                    async with open_stream(
                        client,
                        self._builder(client, url, body, token),
                        label=LABEL,
                        config=self.http,
                        read_error=self._read_error,
                    ) as response:
                        opened = True
                        _check_event_stream(response)
                        async for delta in sse_deltas(response, label=LABEL, model=model):
                            yield delta
                    return
                except ProviderAuthError as exc:
                    if opened or attempt or exc.status != 401:
                        raise
                    logger.info("GigaChat answered 401; refreshing the token and retrying once")
                    stale = token

    async def _get(self, path: str) -> httpx.Response:
        """GET ``path`` with the token, retrying once after a 401."""
        async with make_client(self.http) as client:
            stale: str | None = None
            for _ in range(2):
                token = await self.auth.token(client, stale=stale)
                try:
                    response = await client.get(
                        f"{self.base_url}{path}", headers=self.headers(token)
                    )
                except httpx.HTTPError as exc:
                    raise transport_error(LABEL, exc, started=False) from exc
                if response.status_code != 401:
                    break
                stale = token
        if not response.is_success:
            raise self._read_error(response)
        return response

    async def list_models(self) -> list[ModelInfo]:
        response = await self._get("/models")
        try:
            models = _ModelList.model_validate_json(response.content)
        except ValidationError:
            raise ProviderBadResponse(
                gettext("%(label)s sent an unreadable model list.") % {"label": LABEL}
            ) from None
        kinds: dict[str, Literal["chat", "embedder"]] = {"chat": "chat", "embedder": "embedder"}
        return [ModelInfo(m.id, kind=kinds.get(m.type, "other")) for m in models.data]


class _Model(BaseModel):
    id: str
    type: str = "chat"


class _ModelList(BaseModel):
    data: list[_Model] = []


def _check_event_stream(response: httpx.Response) -> None:
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("text/event-stream"):
        raise ProviderBadResponse(
            gettext(
                "%(label)s answered a streaming request with %(type)s instead of an event stream."
            )
            % {"label": LABEL, "type": content_type or gettext("no content type")},
            provider="gigachat",
        )


def _bearer(response: httpx.Response) -> list[str]:
    value = response.request.headers.get("authorization", "")
    return [value.removeprefix("Bearer ")] if value.startswith("Bearer ") else []
