"""Text encoders: texts in, L2-normalised float32 vectors out.

Plain Python: no Django, and torch / sentence-transformers are imported only when a real model is
first used, so that importing the web application never loads them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from embeddings.keyword import Tokenizer

logger = logging.getLogger(__name__)

Vectors = NDArray[np.float32]

ANY_LANGUAGE = "*"
# Name fragments of sentence-transformers models trained on many languages, Russian included.
_MULTILINGUAL_HINTS = (
    "multilingual",
    "labse",
    "e5",
    "bge-m3",
    "rubert",
    "_ru",
    "-ru",
    "xlm",
    "mpnet-base-v2-ru",
)
# all-MiniLM-L6-v2 and its relatives were trained on English pairs only.
_ENGLISH_HINTS = ("all-minilm", "all-mpnet", "msmarco", "multi-qa", "gtr-t5", "sentence-t5")


class Encoder(Protocol):
    """Turns texts into vectors.

    ``encode`` returns an array of shape ``(len(texts), dimension)``, dtype float32, each row of
    unit L2 norm (so that inner product is cosine similarity). Row ``i`` depends only on
    ``texts[i]``. ``languages`` holds ISO 639-1 codes the model understands, or ``"*"``.
    """

    name: str
    languages: frozenset[str]

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Vectors: ...


def guess_languages(model_name: str) -> frozenset[str]:
    """The languages a model is known to handle, judged by its name; unknown models are trusted
    with every language (the operator chose them)."""
    lowered = model_name.lower()
    if any(hint in lowered for hint in _MULTILINGUAL_HINTS):
        return frozenset({ANY_LANGUAGE})
    if any(hint in lowered for hint in _ENGLISH_HINTS):
        return frozenset({"en"})
    return frozenset({ANY_LANGUAGE})


def normalise(vectors: NDArray[Any]) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


class SentenceTransformerEncoder:
    """A sentence-transformers model from a local folder, loaded on first use, once, under a lock.

    The model is shared by every thread of the process; ``encode`` batches the texts itself.
    """

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        batch_size: int = 64,
        device: str = "cpu",
        languages: frozenset[str] | None = None,
    ) -> None:
        self.path = path
        self.name = name
        self.batch_size = batch_size
        self.device = device
        self.languages = languages if languages is not None else guess_languages(name)
        self._model: Any = None
        self._dimension: int | None = self._dimension_from_files(path)
        self._lock = threading.Lock()

    @staticmethod
    def _dimension_from_files(path: Path) -> int | None:
        pooling = path / "1_Pooling" / "config.json"
        try:
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        except (OSError, ValueError, KeyError):
            return None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            model = self._load()
            self._dimension = int(model.get_sentence_embedding_dimension())
        return self._dimension

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                import os

                # Never reach for a model hub: the weights are on disk.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                logger.info("loading embedding model %s from %s", self.name, self.path)
                self._model = SentenceTransformer(
                    str(self.path), device=self.device, local_files_only=True
                )
        return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return normalise(vectors)


class FakeEncoder:
    """A deterministic, dependency-free stand-in for tests: each (stemmed) token adds a fixed
    pseudo-random ±1 pattern; texts sharing words get similar vectors. Knows every language."""

    name = "fake-hashing-384"
    languages = frozenset({ANY_LANGUAGE})

    def __init__(self, dimension: int = 384) -> None:
        self._dimension = dimension
        self._tokenizer: Tokenizer | None = None
        self.calls = 0
        self.texts_encoded = 0

    @property
    def dimension(self) -> int:
        return self._dimension

    def _token_vector(self, token: str) -> Vectors:
        seed = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        rng = np.random.default_rng(seed)
        return rng.standard_normal(self._dimension).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> Vectors:
        if self._tokenizer is None:
            from embeddings.keyword import Tokenizer

            self._tokenizer = Tokenizer()
        self.calls += 1
        self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            tokens = self._tokenizer.tokenize(text) or [text.strip().lower() or "<empty>"]
            for token in tokens:
                out[row] += self._token_vector(token)
        return normalise(out)
