"""GigaChat ``Embeddings`` (1024-d) as an encoder for a knowledge base; see
:mod:`providers._embeddings` for what the encoders share."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import httpx
import numpy as np
from django.utils.translation import gettext
from pydantic import BaseModel, ValidationError

from providers._embeddings import ANY_LANGUAGE, Vectors, normalised, post
from providers._http import (
    DEFAULT_HTTP,
    HttpConfig,
    error_detail,
    error_for_status,
    make_sync_client,
    parse_retry_after,
    redact,
)
from providers.errors import ProviderBadResponse
from providers.gigachat.auth import AUTH_HINT, GigaChatAuth, tls_verify

#: The batch limits langchain-gigachat keeps to (spec 2.7; the API's own are undocumented).
MAX_BATCH = 90
MAX_BATCH_CHARS = 1_000_000


class _GigaItem(BaseModel):
    embedding: list[float]
    index: int = 0


class _GigaEmbeddings(BaseModel):
    data: list[_GigaItem]


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
        batch_size: int = MAX_BATCH,
        max_batch_chars: int = MAX_BATCH_CHARS,
        ca_bundle: str = "",
        verify_ssl: bool = True,
        http: HttpConfig = DEFAULT_HTTP,
        auth: GigaChatAuth | None = None,
    ) -> None:
        self.name = f"gigachat/{model}"
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
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
        return normalised(rows, self._dimension)

    def _batch(self, client: httpx.Client, texts: list[str]) -> list[list[float]]:
        stale: str | None = None
        for _ in range(2):  # a 401 refreshes the token and retries once
            token = self.auth.token_sync(client, stale=stale)
            response = post(
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
                auth_hint=AUTH_HINT,
            )
        try:
            items = _GigaEmbeddings.model_validate_json(response.content).data
        except ValidationError:
            raise ProviderBadResponse(gettext("GigaChat sent unreadable embeddings.")) from None
        if len(items) != len(texts):
            raise ProviderBadResponse(gettext("GigaChat sent a different number of embeddings."))
        return [item.embedding for item in sorted(items, key=lambda i: i.index)]
