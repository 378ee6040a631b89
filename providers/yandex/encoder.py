"""Yandex ``text-search-doc`` / ``text-search-query`` (256-d) as an encoder for a knowledge
base; see :mod:`providers._embeddings` for what the encoders share."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Literal

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
from providers.errors import ProviderBadResponse, ProviderError
from providers.yandex.auth import AUTH_HINT, YandexAuth

#: Yandex's default embeddings quota (spec 1.9): requests per second.
MAX_RPS = 10.0


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
        max_rps: float = MAX_RPS,
        pacer: _Pacer | None = None,
    ) -> None:
        auth = YandexAuth(api_key=api_key, iam_token=iam_token)
        if not auth.given:
            raise ProviderError(gettext("Yandex embeddings need an API key or an IAM token."))
        # Doc and query models share one vector space: one name for the knowledge base.
        self.name = "yandex/text-search"
        self.kind = kind
        self.base_url = base_url.rstrip("/")
        self.folder_id = folder_id
        self.http = http
        self._auth = auth
        self.max_rps = max_rps
        # The query encoder shares the doc encoder's pacer: one quota for both models.
        self._pacer = pacer or _Pacer(max_rps)

    def for_queries(self) -> YandexEncoder:
        return YandexEncoder(
            base_url=self.base_url,
            folder_id=self.folder_id,
            api_key=self._auth.api_key,
            iam_token=self._auth.iam_token,
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
        return normalised(rows, self.dimension)

    def _one(self, client: httpx.Client, text: str) -> list[float]:
        headers = {"Authorization": self._auth.authorization}
        if self._auth.sends_folder_header:
            headers["x-folder-id"] = self.folder_id
        self._pacer.wait()
        response = post(
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
                redact(error_detail(response), self._auth.secrets),
                retry_after=parse_retry_after(response),
                auth_hint=AUTH_HINT,
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
