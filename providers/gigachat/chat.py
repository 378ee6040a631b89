"""Adapter for GigaChat's v1 API (``/api/v1/chat/completions`` with SSE, ``/models``).

Access goes through the OAuth token of :mod:`providers.gigachat.auth`; after a 401 the token
is refreshed once and the call retried once.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import httpx
from django.utils.translation import gettext
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
from providers.gigachat.auth import AUTH_HINT, LABEL, GigaChatAuth, tls_verify

logger = logging.getLogger(__name__)


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
