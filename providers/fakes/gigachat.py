"""A loopback fake of GigaChat: OAuth (``/api/v2/oauth``) and the v1 API (chat with SSE,
models, embeddings, token count, balance), following the spec's section 4 items 19-26."""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from typing import Any, Literal

from providers.fakes._server import Exchange, Route
from providers.fakes.openai import REFUSAL, OpenAIFake, fake_vector, sse

SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")
VERSION = "2.0.28.2"
MODELS = {
    "GigaChat": "chat",
    "GigaChat-2": "chat",
    "GigaChat-2-Pro": "chat",
    "GigaChat-2-Max": "chat",
    "Embeddings": "embedder",
    "EmbeddingsGigaR": "embedder",
}
DIMENSIONS = {"Embeddings": 1024, "EmbeddingsGigaR": 2560}

TokenFormat = Literal["expires_at", "tok_exp_ms", "tok_exp_s"]


def authorization_key(client_id: str, client_secret: str) -> str:
    return base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


class GigaChatFake(OpenAIFake):
    """OAuth at ``{url}/api/v2/oauth``, the API at ``{url}/api/v1``. Scriptable state:
    ``token_ttl`` (seconds), ``token_format``, ``allowed_scope``, ``revoke_tokens()``,
    ``pay_as_you_go``, ``max_embedding_batch`` and ``batch_status``."""

    label = "gigachat-fake"
    chunk_object = "chat.completion"

    def __init__(self, port: int = 0, *, credentials: str = "") -> None:
        super().__init__(port, models=tuple(MODELS))
        self.credentials = credentials or authorization_key(str(uuid.uuid4()), str(uuid.uuid4()))
        self.allowed_scope = "GIGACHAT_API_PERS"
        self.token_ttl = 30 * 60.0
        self.token_format: TokenFormat = "expires_at"
        self.tokens: dict[str, float] = {}  # token -> expiry (unix seconds)
        self.oauth_calls = 0
        self.pay_as_you_go = False
        self.max_embedding_batch = 90
        self.batch_status = 413
        self.context_limit = 131_072
        self._token_lock = threading.Lock()

    @property
    def auth_url(self) -> str:
        return f"{self.url}/api/v2/oauth"

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/v1"

    def routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("POST", "/api/v2/oauth"): self.oauth,
            ("POST", "/api/v1/chat/completions"): self.chat,
            ("GET", "/api/v1/models"): self.list_models,
            ("POST", "/api/v1/embeddings"): self.embeddings,
            ("POST", "/api/v1/tokens/count"): self.count_tokens,
            ("GET", "/api/v1/balance"): self.balance,
        }

    def dynamic_route(self, method: str, path: str) -> Route | None:
        if method == "GET" and path.startswith("/api/v1/models/"):
            return self.get_model
        return None

    def error_body(self, status: int, message: str) -> Any:
        return {"status": status, "message": message}

    def revoke_tokens(self) -> None:
        """Invalidate every issued token now, although its ``expires_at`` lies ahead."""
        with self._token_lock:
            self.tokens.clear()

    # --- OAuth ------------------------------------------------------------------------------
    def oauth(self, ex: Exchange) -> None:
        with self._token_lock:
            self.oauth_calls += 1
        headers = ex.request.headers
        if headers.get("authorization") != f"Basic {self.credentials}":
            ex.send_json(401, {"code": 6, "message": "credentials doesn't match db data"})
            return
        try:
            valid_uuid = uuid.UUID(headers.get("rquid", "")).version == 4
        except ValueError:
            valid_uuid = False
        if not valid_uuid:
            ex.send_json(400, {"code": 4, "message": "RqUID is not a valid UUID4"})
            return
        scope = ex.request.form.get("scope", "")
        if not scope:
            ex.send_json(400, {"code": 5, "message": "scope is empty"})
            return
        if scope != self.allowed_scope:
            message = "scope from db not fully includes consumed scope"
            ex.send_json(400, {"code": 7, "message": message})
            return
        # Opaque and JWE-like, as the real ones; clients must not decode it.
        token = ".".join(
            [
                "eyJhbGciOiJSU0EtT0FFUC0yNTYifQ",
                "",
                secrets.token_urlsafe(24),
                secrets.token_urlsafe(48),
            ]
        )
        expiry = time.time() + self.token_ttl
        with self._token_lock:
            self.tokens[token] = expiry
        ms = int(expiry * 1000)
        if self.token_format == "tok_exp_ms":
            ex.send_json(200, {"tok": token, "exp": ms})
        elif self.token_format == "tok_exp_s":
            ex.send_json(200, {"tok": token, "exp": int(expiry)})
        else:
            ex.send_json(200, {"access_token": token, "expires_at": ms})

    def check_auth(self, ex: Exchange) -> bool:
        if ex.request.path == "/api/v2/oauth":
            return True
        value = ex.request.headers.get("authorization", "")
        token = value.removeprefix("Bearer ")
        with self._token_lock:
            expiry = self.tokens.get(token) if value.startswith("Bearer ") else None
        if expiry is None:
            ex.send_json(401, self.error_body(401, "Unauthorized"))
            return False
        if expiry <= time.time():
            ex.send_json(401, self.error_body(401, "Token has expired"))
            return False
        return True

    # --- chat -------------------------------------------------------------------------------
    def validate_chat(self, ex: Exchange, body: dict[str, Any]) -> bool:
        messages = body.get("messages") or []
        if any("content" not in m for m in messages):
            ex.send_json(
                422, self.error_body(422, "Invalid params: messages[].content is required")
            )
            return False
        for name in ("temperature", "repetition_penalty"):
            value = body.get(name)
            if value is not None and value <= 0:
                message = f"Invalid params: {name} must be in range (0, +inf)"
                ex.send_json(422, self.error_body(422, message))
                return False
        if MODELS.get(body.get("model", "")) != "chat":
            ex.send_json(404, self.error_body(404, "No such model"))
            return False
        if self.prompt_tokens(body) > self.context_limit:
            message = f"Invalid params: prompt is too long, max context {self.context_limit} tokens"
            ex.send_json(422, self.error_body(422, message))
            return False
        return True

    def answer_tokens(self, body: dict[str, Any]) -> tuple[list[str], str]:
        tokens, finish = super().answer_tokens(body)
        if finish == "content_filter":
            return [REFUSAL], "blacklist"
        return tokens, finish

    def response_model(self, model: str) -> str:
        return f"{model}:{VERSION}"

    def response_headers(self, ex: Exchange) -> dict[str, str]:
        h = ex.request.headers
        return {
            "X-Request-Id": h.get("x-request-id") or str(uuid.uuid4()),
            "X-Session-Id": h.get("x-session-id") or str(uuid.uuid4()),
        }

    def whole_response(
        self, model: str, text: str, finish: str, usage: dict[str, int]
    ) -> dict[str, Any]:
        response = super().whole_response(model, text, finish, usage)
        del response["id"]
        return response

    def stream_events(
        self, model: str, tokens: list[str], finish: str, usage: dict[str, int]
    ) -> list[bytes]:
        base = {"created": int(time.time()), "model": model, "object": "chat.completion"}
        s = self.script
        events = []
        for index, token in enumerate(tokens):
            delta = {"content": token, "role": "assistant"} if index == 0 else {"content": token}
            events.append(sse({"choices": [{"delta": delta, "index": 0}], **base}, s))
        last: dict[str, Any] = {
            "choices": [{"delta": {"content": ""}, "index": 0, "finish_reason": finish}],
            **base,
        }
        if not s.no_usage:
            last["usage"] = {**usage, "precached_prompt_tokens": 0}
        events.append(sse(last, s))
        if not s.omit_done:
            events.append(sse("[DONE]", s))
        return events

    # --- models, embeddings, tokens, balance ------------------------------------------------
    def list_models(self, ex: Exchange) -> None:
        data = [
            {"id": m, "object": "model", "owned_by": "salutedevices", "type": kind}
            for m, kind in MODELS.items()
        ]
        ex.send_json(200, {"object": "list", "data": data})

    def get_model(self, ex: Exchange) -> None:
        name = ex.request.path.rsplit("/", 1)[1]
        if name not in MODELS:
            ex.send_json(404, self.error_body(404, "No such model"))
            return
        payload = {"id": name, "object": "model", "owned_by": "salutedevices", "type": MODELS[name]}
        ex.send_json(200, payload)

    def embeddings(self, ex: Exchange) -> None:
        body = ex.request.json() or {}
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        model = body.get("model", "")
        if model not in DIMENSIONS:
            ex.send_json(404, self.error_body(404, "No such model"))
            return
        if len(texts) > self.max_embedding_batch:
            message = f"Too many inputs: {len(texts)} > {self.max_embedding_batch}"
            ex.send_json(self.batch_status, self.error_body(self.batch_status, message))
            return
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": fake_vector(t, DIMENSIONS[model], scale=3.0),
                "usage": {"prompt_tokens": len(t) // 3 + 1},
            }
            for i, t in enumerate(texts)
        ]
        ex.send_json(200, {"object": "list", "model": model, "data": data})

    def count_tokens(self, ex: Exchange) -> None:
        texts = (ex.request.json() or {}).get("input") or []
        payload = [
            {"object": "tokens", "tokens": len(t) // 3 + 1, "characters": len(t)} for t in texts
        ]
        ex.send_json(200, payload)

    def balance(self, ex: Exchange) -> None:
        if self.pay_as_you_go:
            ex.send_json(403, self.error_body(403, "Permission denied"))
            return
        ex.send_json(200, {"balance": [{"usage": "GigaChat", "value": 100500}]})
