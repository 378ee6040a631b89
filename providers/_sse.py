"""OpenAI-style SSE chat streams (``data: {chunk}`` … ``data: [DONE]``), shared by the
OpenAI-compatible and GigaChat adapters; their dialects differ only in details the parser
tolerates (where usage arrives, ``object`` names, a missing ``[DONE]``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from django.utils.translation import gettext as _
from pydantic import BaseModel, ValidationError

from providers._http import StreamProgress, error_for_status, iter_lines, iter_sse_data
from providers.base import Delta, FinishReason, Usage
from providers.errors import ProviderBadResponse, ProviderStreamInterrupted

FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "blacklist": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


class ChunkDelta(BaseModel):
    content: str | None = None


class ChunkChoice(BaseModel):
    delta: ChunkDelta = ChunkDelta()
    finish_reason: str | None = None


class ChunkUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    precached_prompt_tokens: int = 0

    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.prompt_tokens,
            output_tokens=self.completion_tokens,
            total_tokens=self.total_tokens or self.prompt_tokens + self.completion_tokens,
            cached_tokens=self.precached_prompt_tokens,
        )


class Chunk(BaseModel):
    choices: list[ChunkChoice] = []
    usage: ChunkUsage | None = None
    model: str = ""
    error: Any = None


def parse_chunk(data: str, label: str) -> Chunk:
    try:
        return Chunk.model_validate_json(data)
    except ValidationError:
        raise ProviderBadResponse(
            _("%(label)s sent a malformed piece of the answer; the text so far is incomplete.")
            % {"label": label},
            provider=label,
        ) from None


def chunk_error(label: str, error: Any) -> Exception:
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("error") or error)
        code = error.get("code")
        status = code if isinstance(code, int) else 500
    else:
        message, status = str(error), 500
    return error_for_status(
        label, status, _("%(detail)s (in the middle of the answer)") % {"detail": message}
    )


async def sse_deltas(response: httpx.Response, *, label: str, model: str) -> AsyncIterator[Delta]:
    """Deltas from an OpenAI-style SSE response, then the final delta. Raises
    ``ProviderStreamInterrupted`` when the stream ends before a finish reason."""
    progress = StreamProgress()
    finish: FinishReason | None = None
    usage: Usage | None = None
    lines = iter_lines(response, label=label, progress=progress)
    async for data in iter_sse_data(lines):
        if data.strip() == "[DONE]":
            break
        chunk = parse_chunk(data, label)
        if chunk.error is not None:
            raise chunk_error(label, chunk.error)
        model = chunk.model or model
        if chunk.usage is not None:
            usage = chunk.usage.usage()
        for choice in chunk.choices[:1]:
            if choice.delta.content:
                progress.started = True
                yield Delta(text=choice.delta.content)
            if choice.finish_reason:
                finish = FINISH_REASONS.get(choice.finish_reason, "other")
    if finish is None:
        raise ProviderStreamInterrupted(
            _("%(label)s ended the answer before finishing it; the text so far is incomplete.")
            % {"label": label},
            provider=label,
        )
    yield Delta(text="", finish_reason=finish, usage=usage, model=model)
