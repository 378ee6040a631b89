"""Paragraph vectors aggregated into a section or document vector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from embeddings.encoder import Vectors, normalise

METHODS = ("mean", "weighted_length", "weighted_position")


def aggregation_weights(
    method: str, count: int, *, lengths: Sequence[int] | None = None, decay: float = 0.85
) -> NDArray[np.float64]:
    """Weights of ``count`` paragraphs, summing to 1.

    ``mean``: equal; ``weighted_length``: proportional to ``lengths`` (characters or tokens);
    ``weighted_position``: ``decay ** i`` for the i-th paragraph, so the opening counts most.
    Raises ``ValueError`` for an unknown method or missing lengths.
    """
    if count == 0:
        return np.zeros(0)
    if method == "mean":
        weights = np.ones(count)
    elif method == "weighted_length":
        if lengths is None or len(lengths) != count:
            raise ValueError("weighted_length needs one length per paragraph")
        weights = np.maximum(np.asarray(lengths, dtype=np.float64), 0.0)
        if weights.sum() == 0:
            weights = np.ones(count)
    elif method == "weighted_position":
        if not 0.0 < decay <= 1.0:
            raise ValueError("decay must be in (0, 1]")
        weights = decay ** np.arange(count, dtype=np.float64)
    else:
        raise ValueError(f"unknown aggregation {method!r}; choose one of {', '.join(METHODS)}")
    normalised: NDArray[np.float64] = weights / weights.sum()
    return normalised


def aggregate(
    vectors: Vectors,
    method: str = "mean",
    *,
    lengths: Sequence[int] | None = None,
    decay: float = 0.85,
) -> NDArray[np.float32]:
    """One unit-length vector for a section or document from its paragraph vectors (rows), by
    the weighted mean of :func:`aggregation_weights`. An empty input gives a zero vector."""
    if len(vectors) == 0:
        return np.zeros(vectors.shape[1] if vectors.ndim == 2 else 0, dtype=np.float32)
    weights = aggregation_weights(method, len(vectors), lengths=lengths, decay=decay)
    mean = (weights[:, None] * vectors.astype(np.float64)).sum(axis=0, keepdims=True)
    result: NDArray[np.float32] = normalise(mean)[0]
    return result


class RunningAggregate:
    """:func:`aggregate` over batches of paragraph vectors given in document order: only a
    running weighted sum is kept (one ``dimension``-long row), never all the vectors.

    ``add`` each batch (rows in order; ``lengths`` for ``weighted_length``), then ``result``.
    """

    def __init__(self, method: str = "mean", *, decay: float = 0.85) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown aggregation {method!r}; choose one of {', '.join(METHODS)}")
        if not 0.0 < decay <= 1.0:
            raise ValueError("decay must be in (0, 1]")
        self.method = method
        self.decay = decay
        self.count = 0
        self._weighted: NDArray[np.float64] | None = None
        self._plain: NDArray[np.float64] | None = None  # when every length is 0
        self._weight_sum = 0.0

    def add(self, vectors: Vectors, *, lengths: Sequence[int] | None = None) -> None:
        n = len(vectors)
        if n == 0:
            return
        rows = np.asarray(vectors, dtype=np.float64)
        if self.method == "mean":
            weights = np.ones(n)
        elif self.method == "weighted_length":
            if lengths is None or len(lengths) != n:
                raise ValueError("weighted_length needs one length per paragraph")
            weights = np.maximum(np.asarray(lengths, dtype=np.float64), 0.0)
        else:
            weights = self.decay ** np.arange(self.count, self.count + n, dtype=np.float64)
        weighted = weights @ rows
        plain = rows.sum(axis=0)
        if self._weighted is None or self._plain is None:
            self._weighted, self._plain = weighted, plain
        else:
            self._weighted += weighted
            self._plain += plain
        self._weight_sum += float(weights.sum())
        self.count += n

    def result(self) -> NDArray[np.float32] | None:
        """The unit-length aggregate, or None when nothing was added."""
        if self._weighted is None or self._plain is None:
            return None
        total = self._weighted if self._weight_sum > 0 else self._plain
        vector: NDArray[np.float32] = normalise(total[None, :])[0]
        return vector
