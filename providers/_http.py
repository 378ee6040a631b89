"""What the HTTP adapters share: timeouts, retries before the first token, error mapping,
and line/SSE readers over an httpx response. Private to ``providers``."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import re
import ssl
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from django.utils.translation import gettext as _

from providers.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderContextTooLong,
    ProviderError,
    ProviderModelNotFound,
    ProviderRateLimited,
    ProviderStreamInterrupted,
    ProviderTimeout,
    ProviderUnavailable,
)

logger = logging.getLogger(__name__)

_CONTEXT_HINTS = re.compile(
    r"number of input tokens|text length is|context length|context window|too long|"
    r"maximum context|too many tokens|request entity too large",
    re.IGNORECASE,
)
_MODEL_HINTS = re.compile(r"model_uri|model uri|no such model|unknown model|model not found", re.I)


@dataclass(frozen=True)
class HttpConfig:
    """Timeouts (seconds) and the retry policy for 429/503 before the first token.
    ``verify`` is True, False, or the path of a CA bundle file."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 10.0
    retry_statuses: tuple[int, ...] = (429, 503)
    verify: bool | str = True

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.read_timeout,
            pool=self.connect_timeout,
        )

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.max_backoff)
        base = self.backoff * 2**attempt
        return float(min(base + random.uniform(0, self.backoff), self.max_backoff))


DEFAULT_HTTP = HttpConfig()


@functools.lru_cache(maxsize=16)
def _ssl_context(cafile: str) -> ssl.SSLContext:
    # Loading a CA bundle costs ~20 ms of blocked event loop; each answer builds a client, so the
    # context is built once per bundle and shared (an SSLContext is safe to share once set up).
    return ssl.create_default_context(cafile=cafile)


def verify_setting(verify: bool | str) -> bool | ssl.SSLContext:
    """httpx's ``verify`` for a configuration: off, a custom CA bundle, or the default bundle."""
    if verify is False:
        return False
    if isinstance(verify, str):
        return _ssl_context(verify)
    import certifi

    return _ssl_context(certifi.where())


def make_client(config: HttpConfig) -> httpx.AsyncClient:
    """A client for one call: no state crosses event loops."""
    return httpx.AsyncClient(timeout=config.timeout(), verify=verify_setting(config.verify))


def make_sync_client(config: HttpConfig) -> httpx.Client:
    return httpx.Client(timeout=config.timeout(), verify=verify_setting(config.verify))


def parse_retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def redact(text: str, secrets: Collection[str]) -> str:
    """``text`` with every secret replaced, so a server that echoes a key cannot leak it."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def error_for_status(
    label: str,
    status: int,
    detail: str,
    *,
    retry_after: float | None = None,
    auth_hint: str = "",
) -> ProviderError:
    """The error of the family for an HTTP error ``status`` with the server's ``detail``."""
    detail = detail.strip()[:500] or f"HTTP {status}"
    said = _("%(label)s said: %(detail)s (HTTP %(status)s)") % {
        "label": label,
        "detail": detail,
        "status": status,
    }
    values = {"label": label, "detail": detail, "status": status, "said": said}
    if status in (401, 403):
        hint = f" {_(auth_hint)}" if auth_hint else ""  # a gettext_noop constant
        return ProviderAuthError(
            _("%(label)s rejected the credentials: %(detail)s (HTTP %(status)s).") % values + hint,
            provider=label,
            status=status,
        )
    if status == 429:
        wait = (
            _("Try again in %(seconds)s s.") % {"seconds": f"{retry_after:g}"}
            if retry_after
            else _("Try again shortly.")
        )
        return ProviderRateLimited(
            _("%(label)s is rate limiting requests: %(detail)s. %(wait)s")
            % {**values, "wait": wait},
            retry_after=retry_after,
            provider=label,
        )
    if status == 413 or (status in (400, 422) and _CONTEXT_HINTS.search(detail)):
        return ProviderContextTooLong(
            _(
                "The question with its passages is too long for the model. %(said)s. "
                "Ask a shorter question or use fewer passages."
            )
            % values,
            provider=label,
            status=status,
        )
    if status == 404 or (status in (400, 422) and _MODEL_HINTS.search(detail)):
        return ProviderModelNotFound(
            _(
                "%(label)s does not know this model or it is not available: %(detail)s "
                "(HTTP %(status)s)."
            )
            % values,
            provider=label,
            status=status,
        )
    if status == 402:
        return ProviderError(
            _("%(label)s refused: the account has no tokens left (%(detail)s, HTTP 402).") % values,
            provider=label,
            status=status,
        )
    if 400 <= status < 500:
        return ProviderBadRequest(
            _("%(label)s rejected the request: %(said)s.") % values,
            provider=label,
            status=status,
        )
    return ProviderUnavailable(
        _("%(label)s is unavailable right now: %(detail)s (HTTP %(status)s). Try again later.")
        % values,
        provider=label,
        status=status,
    )


def transport_error(label: str, exc: httpx.HTTPError, *, started: bool) -> ProviderError:
    """The error of the family for a network-level failure; ``started`` says whether some of
    the answer had already arrived."""
    if isinstance(exc, httpx.ConnectTimeout):
        return ProviderTimeout(
            _("%(label)s did not accept a connection in time.") % {"label": label},
            provider=label,
        )
    if isinstance(exc, httpx.TimeoutException):
        message = (
            _("%(label)s took too long: timed out waiting for the rest of the answer.")
            if started
            else _("%(label)s took too long: timed out waiting for the answer to start.")
        )
        return ProviderTimeout(message % {"label": label}, provider=label)
    if started:
        return ProviderStreamInterrupted(
            _(
                "The connection to %(label)s broke in the middle of the answer; the text so far "
                "is incomplete."
            )
            % {"label": label},
            provider=label,
        )
    if isinstance(exc, httpx.ConnectError):
        return ProviderUnavailable(
            _("Cannot connect to %(label)s: %(error)s.") % {"label": label, "error": exc},
            provider=label,
        )
    return ProviderUnavailable(
        _("%(label)s failed: %(error)s")
        % {"label": label, "error": f"{type(exc).__name__}: {exc}"},
        provider=label,
    )


ErrorReader = Callable[[httpx.Response], ProviderError]


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    request_factory: Callable[[], httpx.Request],
    *,
    label: str,
    config: HttpConfig,
    read_error: ErrorReader,
) -> AsyncIterator[httpx.Response]:
    """Send the request with ``stream=True`` and yield the 2xx response, retrying the statuses
    in ``config.retry_statuses`` with backoff (only here, before any token). Leaving the
    context closes the response, and so the upstream connection, at once."""
    attempt = 0
    while True:
        try:
            response = await client.send(request_factory(), stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(label, exc, started=False) from exc
        try:
            if response.is_success:
                yield response
                return
            if response.status_code in config.retry_statuses and attempt < config.max_retries:
                wait = config.delay(attempt, parse_retry_after(response))
                logger.info(
                    "%s answered %s; retry %s in %.2f s",
                    label,
                    response.status_code,
                    attempt + 1,
                    wait,
                )
                attempt += 1
                await asyncio.sleep(wait)
                continue
            try:
                await response.aread()
            except httpx.HTTPError as exc:
                raise transport_error(label, exc, started=False) from exc
            raise read_error(response)
        finally:
            await response.aclose()


@dataclass
class StreamProgress:
    """Whether any of the answer has arrived: decides how a network error is reported."""

    started: bool = False


async def iter_lines(
    response: httpx.Response, *, label: str, progress: StreamProgress
) -> AsyncIterator[str]:
    """The response body's lines (UTF-8, split anywhere in transit), mapping network errors."""
    try:
        async for line in response.aiter_lines():
            yield line
    except httpx.HTTPError as exc:
        raise transport_error(label, exc, started=progress.started) from exc


async def iter_sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The ``data`` payloads of a server-sent event stream. Comments (``: ping``), ``event:``
    and ``id:`` lines are skipped; multi-line data is joined with newlines."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def error_detail(response: httpx.Response) -> str:
    """The human part of an error body, whatever its shape: Yandex ``{"error": {...}}``,
    google.rpc ``{"code", "message"}``, GigaChat ``{"status", "message"}``, OpenAI
    ``{"error": {"message"}}`` or ``{"error": "..."}``, FastAPI ``{"detail"}``, or plain text."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:500]
    return _detail_of(payload) or response.text.strip()[:500]


def _detail_of(payload: object) -> str:
    if isinstance(payload, dict):
        for key in ("error", "message", "detail"):
            value = payload.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, dict | list) and (inner := _detail_of(value)):
                return inner
    if isinstance(payload, list) and payload:
        return _detail_of(payload[0])
    return ""


def dump_json(payload: object) -> bytes:
    """Compact JSON with raw UTF-8 (GigaChat counts ``\\uXXXX`` escapes as more tokens)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
