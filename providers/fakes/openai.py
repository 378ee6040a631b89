"""A loopback fake of an OpenAI-compatible server (``/v1/chat/completions`` with SSE,
``/v1/models``, ``/v1/embeddings``): what Ollama, vLLM, llama.cpp and LM Studio serve."""

# Russian answers are the point of these fakes: Cyrillic letters are not typos here.

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
import uuid
from typing import Any

from providers.fakes._server import Exchange, FakeServer, Route, Script, echo_tokens

REFUSAL = "К сожалению, я не могу ответить на этот вопрос."


_WORD = re.compile(r"\w+")
# Words are cut to this many letters: a crude stemmer, so that "отпуск" and "отпуска" (or
# "vacation" and "vacations") land on the same pattern.
_STEM = 6


@functools.lru_cache(maxsize=4096)
def _stem_pattern(stem: str, dimension: int) -> tuple[float, ...]:
    """A fixed pseudo-random pattern in [-1, 1] for one word stem."""
    values: list[float] = []
    counter = 0
    while len(values) < dimension:
        digest = hashlib.sha256(f"{counter}:{stem}".encode()).digest()
        values.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    return tuple(values[:dimension])


def fake_vector(text: str, dimension: int, *, scale: float = 1.0) -> list[float]:
    """Deterministic, un-normalised floats: a hashed bag of words. Each word stem adds a fixed
    pseudo-random pattern, so texts that share words point the same way and a search over them
    finds the passage that uses the question's words. A text without words is hashed whole."""
    stems = [w[:_STEM] for w in _WORD.findall(text.lower())] or [f"\0{text}"]
    total = [0.0] * dimension
    for stem in stems:
        for i, value in enumerate(_stem_pattern(stem, dimension)):
            total[i] += value
    return [v * scale for v in total]


def last_user_text(messages: list[dict[str, Any]], key: str = "content") -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get(key, ""))
    return ""


def sse(payload: Any, script: Script) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    eol = "\r\n" if script.crlf else "\n"
    ping = f": ping{eol}{eol}" if script.ping else ""
    return f"{ping}data: {data}{eol}{eol}".encode()


class OpenAIFake(FakeServer):
    """``api_key`` empty: no key needed. ``models`` are the ids it serves."""

    label = "openai-fake"
    chunk_object = "chat.completion.chunk"

    def __init__(self, port: int = 0, *, api_key: str = "", models: tuple[str, ...] = ()) -> None:
        super().__init__(port)
        self.api_key = api_key
        self.models = list(models or ("llama3.2", "qwen2.5:7b"))
        self.context_limit = 100_000
        self.embedding_dimension = 768

    def routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("POST", "/v1/chat/completions"): self.chat,
            ("GET", "/v1/models"): self.list_models,
            ("POST", "/v1/embeddings"): self.embeddings,
        }

    def error_body(self, status: int, message: str) -> Any:
        kind = "invalid_request_error" if status < 500 else "server_error"
        return {"error": {"message": message, "type": kind, "code": status}}

    def check_auth(self, ex: Exchange) -> bool:
        if not self.api_key or ex.request.headers.get("authorization") == f"Bearer {self.api_key}":
            return True
        ex.send_json(401, self.error_body(401, "Incorrect API key provided"))
        return False

    # --- chat -------------------------------------------------------------------------------
    def answer_tokens(self, body: dict[str, Any]) -> tuple[list[str], str]:
        """The tokens to send and the finish reason, from the script and ``max_tokens``."""
        script = self.script
        tokens = (
            list(script.tokens)
            if script.tokens is not None
            else echo_tokens(last_user_text(body.get("messages", [])))
        )
        finish = script.finish_reason
        limit = body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < len(tokens):
            tokens, finish = tokens[:limit], "length"
        return tokens, finish

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        text = "".join(str(m.get("content", "")) for m in body.get("messages", []))
        return len(text) // 3 + 1

    def validate_chat(self, ex: Exchange, body: dict[str, Any]) -> bool:
        if body.get("model") not in self.models:
            ex.send_json(404, self.error_body(404, f"model '{body.get('model')}' not found"))
            return False
        if self.prompt_tokens(body) > self.context_limit:
            message = (
                f"This model's maximum context length is {self.context_limit} tokens. "
                f"However, your messages resulted in {self.prompt_tokens(body)} tokens."
            )
            ex.send_json(400, self.error_body(400, message))
            return False
        return True

    def chat(self, ex: Exchange) -> None:
        body = ex.request.json() or {}
        if not self.validate_chat(ex, body):
            return
        tokens, finish = self.answer_tokens(body)
        if finish == "content_filter":
            tokens = [REFUSAL]
        usage = {
            "prompt_tokens": self.prompt_tokens(body),
            "completion_tokens": len(tokens),
            "total_tokens": self.prompt_tokens(body) + len(tokens),
        }
        model = self.response_model(body["model"])
        if not body.get("stream"):
            ex.send_json(200, self.whole_response(model, "".join(tokens), finish, usage))
            return
        events = self.stream_events(model, tokens, finish, usage)
        content_type = "application/json" if self.script.wrong_content_type else "text/event-stream"
        ex.start_stream(content_type, self.response_headers(ex))
        ex.stream_events(events, self.script, b"data: {not json\n\n")

    def response_model(self, model: str) -> str:
        return model

    def response_headers(self, ex: Exchange) -> dict[str, str]:
        return {"x-request-id": str(uuid.uuid4())}

    def whole_response(
        self, model: str, text: str, finish: str, usage: dict[str, int]
    ) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ],
            "usage": usage,
        }

    def stream_events(
        self, model: str, tokens: list[str], finish: str, usage: dict[str, int]
    ) -> list[bytes]:
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": self.chunk_object,
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",  # an unknown extra field clients must ignore
        }

        def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": reason}
            return {**base, "choices": [choice]}

        s = self.script
        events = [sse(chunk({"role": "assistant", "content": ""}), s)]
        events += [sse(chunk({"content": t}), s) for t in tokens]
        events.append(sse(chunk({}, finish), s))
        if not s.no_usage:
            events.append(sse({**base, "choices": [], "usage": usage}, s))
        if not s.omit_done:
            events.append(sse("[DONE]", s))
        return events

    # --- models and embeddings -----------------------------------------------------------
    def list_models(self, ex: Exchange) -> None:
        data = [{"id": m, "object": "model", "owned_by": "fake", "created": 0} for m in self.models]
        ex.send_json(200, {"object": "list", "data": data})

    def embeddings(self, ex: Exchange) -> None:
        body = ex.request.json() or {}
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": fake_vector(t, self.embedding_dimension),
            }
            for i, t in enumerate(texts)
        ]
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        ex.send_json(
            200, {"object": "list", "model": body.get("model"), "data": data, "usage": usage}
        )
