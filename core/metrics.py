"""Prometheus metrics of the application, in the default registry that ``/metrics``
(``raggen.health``) serves. The middleware that counts HTTP requests lives in the roof
(``raggen.observability``); the counters live here so that any app may record to them."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "raggen_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "raggen_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)
TASKS = Counter("raggen_tasks_total", "Background tasks finished", ["task", "outcome"])
TASK_DURATION = Histogram("raggen_task_duration_seconds", "Background task duration", ["task"])
ANSWERS = Counter("raggen_answers_total", "Chat answers finished", ["provider", "model", "status"])
ANSWER_TOKENS = Counter(
    "raggen_answer_tokens_total", "Tokens of chat answers", ["provider", "kind"]
)
FIRST_TOKEN = Histogram(
    "raggen_answer_first_token_seconds",
    "Time from a question to its first answer token",
    ["provider"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)


def record_answer(
    provider: str,
    model: str,
    status: str,
    *,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    first_token_ms: int | None = None,
) -> None:
    """Count one finished answer (complete, stopped or failed) and its tokens."""
    ANSWERS.labels(provider, model, status).inc()
    ANSWER_TOKENS.labels(provider, "prompt").inc(prompt_tokens)
    ANSWER_TOKENS.labels(provider, "completion").inc(completion_tokens)
    if first_token_ms is not None:
        FIRST_TOKEN.labels(provider).observe(first_token_ms / 1000)
