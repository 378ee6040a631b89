"""Adapter for OpenAI-compatible servers (``/v1/chat/completions`` with SSE, ``/v1/models``):
Ollama, vLLM, the llama.cpp server, LM Studio, OpenAI itself, and Yandex's ``/v1``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from django.utils.translation import gettext as _
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
from providers.errors import ProviderBadResponse, ProviderError


class _Model(BaseModel):
    id: str


class _ModelList(BaseModel):
    data: list[_Model] = []


class OpenAICompatProvider:
    """``base_url`` ends in ``/v1``. ``api_key`` is optional (local servers need none);
    it is sent as ``Authorization: <auth_scheme> <key>``. ``extra_headers`` go on every call."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str = "",
        model: str = "",
        temperature: float | None = 0.3,
        max_tokens: int | None = 2000,
        http: HttpConfig = DEFAULT_HTTP,
        name: str = "openai",
        label: str = "The OpenAI-compatible server",
        auth_scheme: str = "Bearer",
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.name = name
        self.label = label
        self.base_url = base_url.rstrip("/")
        self.default_model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.http = http
        self._api_key = api_key
        self._auth_scheme = auth_scheme
        self._extra_headers = dict(extra_headers)

    def _headers(self, *, stream: bool = False) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self._extra_headers}
        if self._api_key:
            headers["Authorization"] = f"{self._auth_scheme} {self._api_key}"
        if stream:
            headers["Accept"] = "text/event-stream"
        return headers

    def _read_error(self, response: httpx.Response) -> ProviderError:
        detail = redact(error_detail(response), [self._api_key])
        return error_for_status(
            self.label,
            response.status_code,
            detail,
            retry_after=parse_retry_after(response),
            auth_hint=_("Check the API key."),
        )

    def body(self, request: ChatRequest, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
        }
        temperature = request.temperature if request.temperature is not None else self.temperature
        if temperature is not None:
            body["temperature"] = min(max(temperature, 0.0), 2.0)
        max_tokens = request.max_tokens or self.max_tokens
        if max_tokens:
            body["max_tokens"] = max_tokens
        return body

    async def _model_for(self, request: ChatRequest) -> str:
        """The request's model, else the configured one, else the server's first model (a
        local Ollama with one pulled model needs no configuration)."""
        model = request.model or self.default_model
        if model:
            return model
        models = await self.list_models()
        if not models:
            raise ProviderError(
                _("%(label)s serves no models and none is configured.") % {"label": self.label},
                provider=self.name,
            )
        return models[0].id

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        model = await self._model_for(request)
        body = dump_json(self.body(request, model))
        url = f"{self.base_url}/chat/completions"
        async with make_client(self.http) as client:

            def build() -> httpx.Request:
                return client.build_request(
                    "POST", url, content=body, headers=self._headers(stream=True)
                )

            async with open_stream(
                client, build, label=self.label, config=self.http, read_error=self._read_error
            ) as response:
                async for delta in sse_deltas(response, label=self.label, model=model):
                    yield delta

    async def list_models(self) -> list[ModelInfo]:
        async with make_client(self.http) as client:
            try:
                response = await client.get(f"{self.base_url}/models", headers=self._headers())
            except httpx.HTTPError as exc:
                raise transport_error(self.label, exc, started=False) from exc
        if not response.is_success:
            raise self._read_error(response)
        try:
            models = _ModelList.model_validate_json(response.content)
        except ValidationError:
            raise ProviderBadResponse(
                _("%(label)s sent an unreadable model list.") % {"label": self.label}
            ) from None
        return [ModelInfo(m.id) for m in models.data]
