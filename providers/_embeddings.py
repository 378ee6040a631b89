"""Provider embeddings as alternative encoders for a knowledge base: GigaChat ``Embeddings``
(1024-d) and Yandex ``text-search-doc`` / ``text-search-query`` (256-d).

Both satisfy the retrieval side's encoder protocol structurally (``name``, ``languages``,
``dimension``, ``encode(texts) -> float32 (n, d)`` with unit rows) without importing it, since
providers stand on the ground floor. Calls are synchronous: encoders run in ingestion tasks
and, for queries, in a worker thread. ``for_queries()`` gives the encoder to use on questions
(Yandex has a separate query model in the same vector space).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx
import numpy as np
from django.utils.translation import gettext
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError

from providers._http import (
    DEFAULT_HTTP,
    HttpConfig,
    error_detail,
    error_for_status,
    make_sync_client,
    parse_retry_after,
    redact,
    transport_error,
)
from providers.errors import ProviderBadResponse, ProviderError
from providers.gigachat.chat import AUTH_HINT as GIGACHAT_AUTH_HINT
from providers.gigachat.chat import GigaChatAuth, tls_verify
from providers.yandex.chat import AUTH_HINT as YANDEX_AUTH_HINT

logger = logging.getLogger(__name__)

Vectors = NDArray[np.float32]
ANY_LANGUAGE = "*"


def _normalised(rows: list[list[float]], dimension: int) -> Vectors:
    out = np.asarray(rows, dtype=np.float32).reshape(len(rows), dimension)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return np.ascontiguousarray(out)


def _post(
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


class _GigaItem(BaseModel):
    embedding: list[float]
    index: int = 0


class _GigaEmbeddings(BaseModel):
    data: list[_GigaItem]


#: The batch limits langchain-gigachat keeps to (spec 2.7; the API's own are undocumented).
GIGACHAT_MAX_BATCH = 90
GIGACHAT_MAX_BATCH_CHARS = 1_000_000
#: Yandex's default embeddings quota (spec 1.9): requests per second.
YANDEX_MAX_RPS = 10.0


def _bounded_batches(texts: Sequence[str], size: int, chars: int) -> list[list[str]]:
    """``texts`` in order, in batches of at most ``size`` texts and ``chars`` characters (a
    single longer text goes alone)."""
    batches: list[list[str]] = []
    batch: list[str] = []
    length = 0
    for text in texts:
        if batch and (len(batch) == size or length + len(text) > chars):
            batches.append(batch)
            batch, length = [], 0
        batch.append(text)
        length += len(text)
    if batch:
        batches.append(batch)
    return batches


class _Pacer:
    """Spaces request starts at least ``1 / rps`` seconds apart, across threads."""

    def __init__(self, rps: float) -> None:
        self.interval = 1.0 / rps if rps > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class GigaChatEncoder:
    """GigaChat ``/embeddings``, sent in batches of at most ``batch_size`` texts and
    ``max_batch_chars`` characters."""

    languages = frozenset({ANY_LANGUAGE})

    def __init__(
        self,
        *,
        base_url: str,
        auth_url: str,
        credentials: str,
        scope: str = "GIGACHAT_API_PERS",
        model: str = "Embeddings",
        dimension: int = 1024,
        batch_size: int = GIGACHAT_MAX_BATCH,
        max_batch_chars: int = GIGACHAT_MAX_BATCH_CHARS,
        ca_bundle: str = "",
        verify_ssl: bool = True,
        http: HttpConfig = DEFAULT_HTTP,
        auth: GigaChatAuth | None = None,
    ) -> None:
        self.name = f"gigachat/{model}"
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.batch_size = max(1, min(batch_size, GIGACHAT_MAX_BATCH))
        self.max_batch_chars = max_batch_chars
        self.http = dataclasses.replace(http, verify=tls_verify(ca_bundle, verify_ssl))
        self.auth = auth or GigaChatAuth(auth_url=auth_url, credentials=credentials, scope=scope)
        self._dimension = dimension
        self._secrets = (credentials,)

    @property
    def dimension(self) -> int:
        """1024 for ``Embeddings``; for other models, what the first response showed."""
        return self._dimension

    def for_queries(self) -> GigaChatEncoder:
        return self

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Unit-length float32 rows, one per text. Raises ``ProviderError``."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        rows: list[list[float]] = []
        with make_sync_client(self.http) as client:
            for batch in _bounded_batches(texts, self.batch_size, self.max_batch_chars):
                rows.extend(self._batch(client, batch))
        self._dimension = len(rows[0])
        return _normalised(rows, self._dimension)

    def _batch(self, client: httpx.Client, texts: list[str]) -> list[list[float]]:
        stale: str | None = None
        for _ in range(2):  # a 401 refreshes the token and retries once
            token = self.auth.token_sync(client, stale=stale)
            response = _post(
                client,
                f"{self.base_url}/embeddings",
                label="GigaChat embeddings",
                http=self.http,
                headers={"Authorization": f"Bearer {token}"},
                payload={"model": self.model, "input": texts},
            )
            if response.status_code != 401:
                break
            stale = token
        if not response.is_success:
            raise error_for_status(
                "GigaChat embeddings",
                response.status_code,
                redact(error_detail(response), self._secrets),
                retry_after=parse_retry_after(response),
                auth_hint=GIGACHAT_AUTH_HINT,
            )
        try:
            items = _GigaEmbeddings.model_validate_json(response.content).data
        except ValidationError:
            raise ProviderBadResponse(gettext("GigaChat sent unreadable embeddings.")) from None
        if len(items) != len(texts):
            raise ProviderBadResponse(gettext("GigaChat sent a different number of embeddings."))
        return [item.embedding for item in sorted(items, key=lambda i: i.index)]


class _YandexEmbedding(BaseModel):
    embedding: list[float]


class YandexEncoder:
    """Yandex ``/foundationModels/v1/textEmbedding``: one text per request (the API takes no
    batches), at most ``max_rps`` requests a second (the default quota; retries on 429 cover
    a lower one). ``kind`` picks ``text-search-doc`` (for chunks) or ``text-search-query``."""

    languages = frozenset({ANY_LANGUAGE})
    dimension = 256

    def __init__(
        self,
        *,
        base_url: str,
        folder_id: str,
        api_key: str = "",
        iam_token: str = "",
        kind: Literal["doc", "query"] = "doc",
        http: HttpConfig = DEFAULT_HTTP,
        max_rps: float = YANDEX_MAX_RPS,
        pacer: _Pacer | None = None,
    ) -> None:
        if not (api_key or iam_token):
            raise ProviderError(gettext("Yandex embeddings need an API key or an IAM token."))
        # Doc and query models share one vector space: one name for the knowledge base.
        self.name = "yandex/text-search"
        self.kind = kind
        self.base_url = base_url.rstrip("/")
        self.folder_id = folder_id
        self.http = http
        self._api_key = api_key
        self._iam_token = iam_token
        self._authorization = f"Api-Key {api_key}" if api_key else f"Bearer {iam_token}"
        self.max_rps = max_rps
        # The query encoder shares the doc encoder's pacer: one quota for both models.
        self._pacer = pacer or _Pacer(max_rps)

    def for_queries(self) -> YandexEncoder:
        return YandexEncoder(
            base_url=self.base_url,
            folder_id=self.folder_id,
            api_key=self._api_key,
            iam_token=self._iam_token,
            kind="query",
            http=self.http,
            max_rps=self.max_rps,
            pacer=self._pacer,
        )

    @property
    def model_uri(self) -> str:
        return f"emb://{self.folder_id}/text-search-{self.kind}/latest"

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Unit-length float32 rows, one per text. Raises ``ProviderError``."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with make_sync_client(self.http) as client:
            rows = [self._one(client, text) for text in texts]
        return _normalised(rows, self.dimension)

    def _one(self, client: httpx.Client, text: str) -> list[float]:
        headers = {"Authorization": self._authorization}
        if self._iam_token and not self._api_key:
            headers["x-folder-id"] = self.folder_id
        self._pacer.wait()
        response = _post(
            client,
            f"{self.base_url}/foundationModels/v1/textEmbedding",
            label="Yandex embeddings",
            http=self.http,
            headers=headers,
            payload={"modelUri": self.model_uri, "text": text},
        )
        if not response.is_success:
            raise error_for_status(
                "Yandex embeddings",
                response.status_code,
                redact(error_detail(response), (self._api_key, self._iam_token)),
                retry_after=parse_retry_after(response),
                auth_hint=YANDEX_AUTH_HINT,
            )
        try:
            vector = _YandexEmbedding.model_validate_json(response.content).embedding
        except ValidationError:
            raise ProviderBadResponse(gettext("Yandex sent an unreadable embedding.")) from None
        if len(vector) != self.dimension:
            raise ProviderBadResponse(
                gettext("Yandex sent a %(count)s-d embedding, not 256-d.") % {"count": len(vector)}
            )
        return vector
