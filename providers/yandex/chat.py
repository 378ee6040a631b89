"""Adapter for YandexGPT's native completion API (``/foundationModels/v1/completion``).

The stream is newline-delimited JSON; each line carries the whole text so far, which we turn
into deltas. A line whose text does not extend the previous one (a content-filter refusal,
or a rewrite) becomes a delta that replaces the text. Models that only the OpenAI-compatible
``/v1`` endpoint serves (Qwen3, gpt-oss, Gemma) are reached through that endpoint.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from django.utils.translation import gettext
from pydantic import BaseModel, ValidationError

from providers._http import (
    DEFAULT_HTTP,
    HttpConfig,
    StreamProgress,
    dump_json,
    error_detail,
    error_for_status,
    iter_lines,
    make_client,
    open_stream,
    parse_retry_after,
    redact,
)
from providers.base import ChatRequest, Delta, FinishReason, ModelInfo, Usage
from providers.errors import ProviderBadResponse, ProviderError, ProviderStreamInterrupted
from providers.openai.chat import OpenAICompatProvider
from providers.yandex.auth import AUTH_HINT, YandexAuth

logger = logging.getLogger(__name__)

LABEL = "YandexGPT"
NATIVE_MODELS = {
    "yandexgpt-lite": "YandexGPT Lite",
    "yandexgpt": "YandexGPT Pro",
    "llama-lite": "Llama 3.1 8B",
    "llama": "Llama 3.3 70B",
}
FINISH: dict[str, FinishReason] = {
    "ALTERNATIVE_STATUS_FINAL": "stop",
    "ALTERNATIVE_STATUS_TRUNCATED_FINAL": "length",
    "ALTERNATIVE_STATUS_CONTENT_FILTER": "content_filter",
    "ALTERNATIVE_STATUS_TOOL_CALLS": "tool_calls",
}


class _Message(BaseModel):
    text: str = ""


class _Alternative(BaseModel):
    message: _Message = _Message()
    status: str = "ALTERNATIVE_STATUS_UNSPECIFIED"


class _Usage(BaseModel):
    # int64 fields arrive as JSON strings ("28"); pydantic's lax mode turns them into ints.
    inputTextTokens: int = 0
    completionTokens: int = 0
    totalTokens: int = 0

    def usage(self) -> Usage:
        return Usage(self.inputTextTokens, self.completionTokens, self.totalTokens)


class _Result(BaseModel):
    alternatives: list[_Alternative]
    usage: _Usage | None = None
    modelVersion: str = ""


class _Error(BaseModel):
    message: str = ""
    httpCode: int = 500


class _Line(BaseModel):
    result: _Result | None = None
    error: _Error | None = None


class YandexGPTProvider:
    """``base_url`` is the host root (``https://llm.api.cloud.yandex.net``). Give ``api_key``
    (sent as ``Api-Key``) or ``iam_token`` (sent as ``Bearer``, with ``x-folder-id``). A
    model is a name (``yandexgpt-lite``), ``name/branch``, or a full ``gpt://`` URI."""

    name = "yandexgpt"

    def __init__(
        self,
        *,
        base_url: str,
        folder_id: str,
        api_key: str = "",
        iam_token: str = "",
        model: str = "yandexgpt-lite",
        branch: str = "latest",
        temperature: float | None = 0.3,
        max_tokens: int | None = 2000,
        data_logging: bool = False,
        send_folder_header: bool | None = None,
        http: HttpConfig = DEFAULT_HTTP,
    ) -> None:
        auth = YandexAuth(api_key=api_key, iam_token=iam_token)
        if not auth.given:
            raise ProviderError(
                gettext("%(label)s needs an API key or an IAM token.") % {"label": LABEL},
                provider=self.name,
            )
        self.base_url = base_url.rstrip("/")
        self.folder_id = folder_id
        self.default_model = model
        self.branch = branch
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.http = http
        self._auth = auth
        self._folder_header = (
            auth.sends_folder_header if send_folder_header is None else send_folder_header
        )
        self._data_logging = data_logging
        self._openai = OpenAICompatProvider(
            base_url=f"{self.base_url}/v1",
            api_key=auth.credential,
            auth_scheme=auth.scheme,
            temperature=temperature,
            max_tokens=max_tokens,
            http=http,
            name=self.name,
            label=LABEL,
            extra_headers=(("OpenAI-Project", folder_id),),
        )

    # --- request ------------------------------------------------------------------------------
    def model_uri(self, model: str) -> str:
        """``gpt://<folder>/<name>/<branch>`` for a model name, ``name/branch`` or a URI."""
        model = model or self.default_model
        if "://" in model:
            return model
        name, _, branch = model.partition("/")
        return f"gpt://{self.folder_id}/{name}/{branch or self.branch}"

    def _is_native(self, uri: str) -> bool:
        return uri.split("/")[3] in NATIVE_MODELS if uri.count("/") >= 3 else True

    def headers(self) -> dict[str, str]:
        headers = {
            "Authorization": self._auth.authorization,
            "Content-Type": "application/json",
            "x-client-request-id": str(uuid.uuid4()),
            "x-data-logging-enabled": "true" if self._data_logging else "false",
        }
        if self._folder_header and self.folder_id:
            headers["x-folder-id"] = self.folder_id
        return headers

    def body(self, request: ChatRequest, *, stream: bool = True) -> dict[str, Any]:
        options: dict[str, Any] = {"stream": stream}
        temperature = request.temperature if request.temperature is not None else self.temperature
        if temperature is not None:
            options["temperature"] = min(max(temperature, 0.0), 1.0)  # the API takes [0, 1]
        max_tokens = request.max_tokens or self.max_tokens
        if max_tokens:
            options["maxTokens"] = str(max_tokens)  # int64 is a string in proto3 JSON
        return {
            "modelUri": self.model_uri(request.model),
            "completionOptions": options,
            "messages": [{"role": m.role, "text": m.content} for m in request.messages],
        }

    def _read_error(self, response: httpx.Response) -> ProviderError:
        return error_for_status(
            LABEL,
            response.status_code,
            redact(error_detail(response), self._auth.secrets),
            retry_after=parse_retry_after(response),
            auth_hint=AUTH_HINT,
        )

    # --- stream ---------------------------------------------------------------------------------
    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        uri = self.model_uri(request.model)
        if not self._is_native(uri):
            async for delta in self._openai.stream(_with_model(request, uri)):
                yield delta
            return
        body = dump_json(self.body(request))
        url = f"{self.base_url}/foundationModels/v1/completion"
        async with make_client(self.http) as client:

            def build() -> httpx.Request:
                return client.build_request("POST", url, content=body, headers=self.headers())

            async with open_stream(
                client, build, label=LABEL, config=self.http, read_error=self._read_error
            ) as response:
                async for delta in self._deltas(response, uri):
                    yield delta

    async def _deltas(self, response: httpx.Response, uri: str) -> AsyncIterator[Delta]:
        shown = ""
        progress = StreamProgress()
        async for raw in iter_lines(response, label=LABEL, progress=progress):
            if not raw.strip():
                continue
            result = self._parse_line(raw)
            alternative = result.alternatives[0]
            text = alternative.message.text
            filtered = alternative.status == "ALTERNATIVE_STATUS_CONTENT_FILTER"
            if text.startswith(shown) and not filtered:
                if text != shown:
                    yield Delta(text=text[len(shown) :])
            else:
                # A refusal or rewrite replaces the text; it does not continue it.
                yield Delta(text=text, replaces=True)
            shown, progress.started = text, True
            finish = FINISH.get(alternative.status)
            if finish is not None:
                usage = result.usage.usage() if result.usage else None
                model = f"{uri.split('/')[3]} {result.modelVersion}".strip()
                yield Delta(text="", finish_reason=finish, usage=usage, model=model)
                return
        raise ProviderStreamInterrupted(
            gettext(
                "%(label)s ended the answer before finishing it; the text so far is incomplete."
            )
            % {"label": LABEL},
            provider=self.name,
        )

    def _parse_line(self, raw: str) -> _Result:
        try:
            line = _Line.model_validate_json(raw)
        except ValidationError:
            raise ProviderBadResponse(
                gettext(
                    "%(label)s sent a malformed piece of the answer; the text so far is incomplete."
                )
                % {"label": LABEL},
                provider=self.name,
            ) from None
        if line.error is not None:
            detail = redact(line.error.message, self._auth.secrets)
            raise error_for_status(
                LABEL,
                line.error.httpCode,
                gettext("%(detail)s (in mid-answer)") % {"detail": detail},
            )
        if line.result is None or not line.result.alternatives:
            raise ProviderBadResponse(
                gettext("%(label)s sent a line with no result.") % {"label": LABEL},
                provider=self.name,
            )
        return line.result

    # --- models ---------------------------------------------------------------------------------
    async def list_models(self) -> list[ModelInfo]:
        """The native models, then what the OpenAI-compatible ``/v1/models`` lists (as names
        without the folder, so they can be passed back as ``model``)."""
        models = [ModelInfo(name, description=text) for name, text in NATIVE_MODELS.items()]
        for info in await self._openai.list_models():
            parts = info.id.split("/")
            name = "/".join(parts[3:]) if info.id.startswith("gpt://") else info.id
            if name.split("/")[0] not in NATIVE_MODELS:
                models.append(ModelInfo(name, description="via the OpenAI-compatible API"))
        return models


def _with_model(request: ChatRequest, model: str) -> ChatRequest:
    from dataclasses import replace

    return replace(request, model=model)
