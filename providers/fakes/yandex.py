"""A loopback fake of Yandex AI Studio's native API (``/foundationModels/v1/completion`` with
cumulative NDJSON streaming, ``/textEmbedding``, ``/tokenize``) plus its OpenAI-compatible
``/v1`` routes, following the spec's section 4 items 9-18."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from providers.fakes._server import Exchange, Route, estimate_tokens
from providers.fakes.openai import REFUSAL, OpenAIFake, fake_vector, last_user_text

MODEL_URI = re.compile(r"^gpt://([^/]+)/([^/]+)(/[^/@]+)?(@[^/]+)?$")
EMB_URI = re.compile(
    r"^emb://([^/]+)/(text-search-doc|text-search-query|text-embeddings)(/[^/@]+)?$"
)
MODELS = ("yandexgpt-lite", "yandexgpt", "llama-lite", "llama")
OPENAI_ONLY = ("qwen3-235b-a22b-fp8", "gpt-oss-120b")
VERSION = "23.10.2024"
GRPC = {400: (3, "Bad Request"), 401: (16, "Unauthorized"), 403: (7, "Forbidden"),
        404: (5, "Not Found"), 429: (8, "Too Many Requests"), 500: (13, "Internal Server Error"),
        501: (12, "Not Implemented"), 503: (14, "Service Unavailable"),
        504: (4, "Gateway Timeout")}  # fmt: skip


class YandexFake(OpenAIFake):
    """Accepts ``Api-Key <api_key>`` or ``Bearer <iam_token>``. ``iam_expires_after``
    (seconds from start) makes the IAM token expire; ``context_limit`` is the prompt limit
    in (estimated) tokens; ``max_in_flight`` limits concurrent generations."""

    label = "yandex-fake"

    def __init__(
        self,
        port: int = 0,
        *,
        api_key: str = "fake-yandex-api-key",
        iam_token: str = "t1.fake-iam-token",
        folder_id: str = "b1gfakefolder",
    ) -> None:
        super().__init__(port, api_key=api_key)
        self.iam_token = iam_token
        self.folder_id = folder_id
        self.iam_expires_after: float | None = None
        self.started_at = time.monotonic()
        self.context_limit = 8192
        self.max_in_flight = 10
        self.models = [f"gpt://{folder_id}/{m}/latest" for m in (*MODELS, *OPENAI_ONLY)]

    def routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("POST", "/foundationModels/v1/completion"): self.completion,
            ("POST", "/foundationModels/v1/textEmbedding"): self.text_embedding,
            ("POST", "/foundationModels/v1/tokenize"): self.tokenize,
            **super().routes(),
        }

    def error_body(self, status: int, message: str) -> Any:
        grpc, http_status = GRPC.get(status, (2, "Unknown"))
        return {
            "error": {
                "grpcCode": grpc,
                "httpCode": status,
                "message": message,
                "httpStatus": http_status,
                "details": [],
            }
        }

    def reject(self, ex: Exchange, status: int, message: str) -> None:
        ex.send_json(status, self.error_body(status, message))

    def check_auth(self, ex: Exchange) -> bool:
        value = ex.request.headers.get("authorization", "")
        if value == f"Api-Key {self.api_key}":
            return True
        if value == f"Bearer {self.iam_token}":
            expired = self.iam_expires_after is not None and (
                time.monotonic() - self.started_at > self.iam_expires_after
            )
            if expired:
                self.reject(ex, 401, "The token has expired")
                return False
            return True
        shown = value.split(" ", 1)[-1][:6]
        self.reject(ex, 401, f"Unknown api key '{shown}…'")
        return False

    # --- native completion ---------------------------------------------------------------
    def validate(self, ex: Exchange, body: dict[str, Any]) -> bool:
        match = MODEL_URI.match(str(body.get("modelUri", "")))
        if not match or match.group(2) not in MODELS:
            self.reject(ex, 400, f"invalid model_uri: {body.get('modelUri')!r}")
            return False
        header_folder = ex.request.headers.get("x-folder-id")
        if header_folder and header_folder != match.group(1):
            message = (
                f"Specified folder ID '{header_folder}' does not match with service account "
                f"folder ID '{match.group(1)}'"
            )
            self.reject(ex, 400, message)
            return False
        messages = body.get("messages") or []
        for message in messages:
            if "text" not in message or message.get("role") not in ("system", "user", "assistant"):
                self.reject(ex, 400, "Error in message: text and a valid role are required")
                return False
        options = body.get("completionOptions") or {}
        temperature = options.get("temperature", 0.3)
        if not 0 <= float(temperature) <= 1:
            self.reject(ex, 400, "temperature must be in [0, 1]")
            return False
        if "maxTokens" in options and not str(options["maxTokens"]).isdigit():
            self.reject(ex, 400, "maxTokens must be a positive integer")
            return False
        got = estimate_tokens("".join(str(m.get("text", "")) for m in messages))
        if got > self.context_limit:
            message = f"number of input tokens must be no more than {self.context_limit}, got {got}"
            self.reject(ex, 400, message)
            return False
        return True

    def completion(self, ex: Exchange) -> None:
        body = ex.request.json() or {}
        if not self.validate(ex, body):
            return
        options = body.get("completionOptions") or {}
        fake_body = {
            "messages": [{"role": "user", "content": last_user_text(body["messages"], "text")}],
            "max_tokens": int(options.get("maxTokens") or 0) or None,
        }
        tokens, finish = self.answer_tokens(fake_body)
        prompt = estimate_tokens("".join(m["text"] for m in body["messages"]))
        lines = self.result_lines(tokens, finish, prompt)
        if not options.get("stream"):
            ex.send_json(200, lines[-1])
            return
        s = self.script
        encoded = [json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in lines]
        if s.repeat_at is not None:
            encoded.insert(s.repeat_at, encoded[s.repeat_at])
        if s.error_line_after is not None:
            error = self.error_body(500, "Internal error while generating")
            encoded = [*encoded[: s.error_line_after], json.dumps(error).encode() + b"\n"]
        ex.start_stream("application/json", {"x-request-id": "fake-request"})
        ex.stream_events(encoded, s, b'{"result":{"alternatives":[{"message"\n')

    def result_lines(self, tokens: list[str], finish: str, prompt: int) -> list[dict[str, Any]]:
        """One ``{"result": ...}`` per token, each with the cumulative text."""
        statuses = {"stop": "FINAL", "length": "TRUNCATED_FINAL", "content_filter": "FINAL"}
        lines: list[dict[str, Any]] = []
        text = ""
        for index, token in enumerate(tokens):
            text += token
            shown = text
            if self.script.rewrite_at is not None and index >= self.script.rewrite_at:
                shown = "Иначе говоря: " + text
            last = index == len(tokens) - 1 and finish != "content_filter"
            status = statuses.get(finish, "FINAL") if last else "PARTIAL"
            lines.append(self.result(shown, status, prompt, index + 1))
        if finish == "content_filter" or not tokens:
            status = "CONTENT_FILTER" if finish == "content_filter" else "FINAL"
            lines.append(self.result(REFUSAL if tokens else "", status, prompt, len(tokens)))
        return lines

    def result(self, text: str, status: str, prompt: int, completion: int) -> dict[str, Any]:
        result: dict[str, Any] = {
            "alternatives": [
                {
                    "message": {"role": "assistant", "text": text},
                    "status": f"ALTERNATIVE_STATUS_{status}",
                }
            ],
            "modelVersion": VERSION,
        }
        if not self.script.no_usage:
            result["usage"] = {
                "inputTextTokens": str(prompt),
                "completionTokens": str(completion),
                "totalTokens": str(prompt + completion),
            }
        return {"result": result}

    # --- embeddings and tokenizer ----------------------------------------------------------
    def text_embedding(self, ex: Exchange) -> None:
        body = ex.request.json() or {}
        text = body.get("text")
        if not EMB_URI.match(str(body.get("modelUri", ""))):
            self.reject(ex, 400, f"invalid model_uri: {body.get('modelUri')!r}")
            return
        if not isinstance(text, str):
            self.reject(ex, 400, "text must be a string: one text per request")
            return
        if estimate_tokens(text) > 2000:
            got = estimate_tokens(text)
            self.reject(ex, 400, f"number of input tokens must be no more than 2000, got {got}")
            return
        payload = {
            "embedding": fake_vector(text, 256, scale=0.1),
            "numTokens": str(estimate_tokens(text)),
            "modelVersion": "06.12.2023",
        }
        ex.send_json(200, payload)

    def tokenize(self, ex: Exchange) -> None:
        text = str((ex.request.json() or {}).get("text", ""))
        tokens: list[dict[str, Any]] = [{"id": "1", "text": "<s>", "special": True}]
        tokens += [{"id": str(100 + i), "text": "▁" + w} for i, w in enumerate(text.split())]
        ex.send_json(200, {"tokens": tokens, "modelVersion": VERSION})

    # --- OpenAI-compatible /v1 ------------------------------------------------------------
    def validate_chat(self, ex: Exchange, body: dict[str, Any]) -> bool:
        if body.get("model") not in self.models:
            self.reject(ex, 400, f"invalid model_uri: {body.get('model')!r}")
            return False
        return True

    def response_model(self, model: str) -> str:
        return model.replace(f"//{self.folder_id}/", "//")  # the folder is dropped, as recorded
