"""What the provider embeddings encoders share (the vendors' own are
``providers/<vendor>/encoder.py``).

Both encoders satisfy the retrieval side's encoder protocol structurally (``name``,
``languages``, ``dimension``, ``encode(texts) -> float32 (n, d)`` with unit rows) without
importing it, since providers stand on the ground floor. Calls are synchronous: encoders run in
ingestion tasks and, for queries, in a worker thread. ``for_queries()`` gives the encoder to use
on questions (Yandex has a separate query model in the same vector space).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

from providers._http import HttpConfig, parse_retry_after, transport_error

Vectors = NDArray[np.float32]
ANY_LANGUAGE = "*"


def normalised(rows: list[list[float]], dimension: int) -> Vectors:
    out = np.asarray(rows, dtype=np.float32).reshape(len(rows), dimension)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return np.ascontiguousarray(out)


def post(
    client: httpx.Client,
    url: str,
    *,
    label: str,
    http: HttpConfig,
    headers: dict[str, str],
    payload: dict[str, Any],
) -> httpx.Response:
    """POST with retries on ``http.retry_statuses``; returns any final response."""
    for attempt in range(http.max_retries + 1):
        try:
            response = client.post(url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise transport_error(label, exc, started=False) from exc
        if response.status_code not in http.retry_statuses or attempt == http.max_retries:
            break
        time.sleep(http.delay(attempt, parse_retry_after(response)))
    return response
