"""Fusing the dense and keyword rankings, and deciding how much to trust each.

Two fusions, both weighted and both giving a fused score in [0, 1] (so that ``min_score`` means
the same for any weights):

- ``convex`` (the default): each list's scores are min-max normalised over the list, and a chunk
  scores ``(w_d * dense + w_k * keyword) / (w_d + w_k)``, a side that did not return it adding 0.
  Bruch et al. (2023, "An Analysis of Fusion Functions for Hybrid Retrieval") found it better
  than RRF, and so did we: nDCG@10 0.728 against 0.716 on SciFact, 0.978 against 0.968 on
  XQuAD-en (docs/EVALUATION.md).
- ``rrf``, reciprocal rank fusion (Cormack et al. 2009): a chunk at rank r (1-based) of a list
  with weight w gains ``w / (k + r)``, divided by the maximum ``sum(w) / (k + 1)``.

An encoder that does not know the language of the query or of the knowledge base ranks close to
noise (all-MiniLM-L6-v2 on Russian: nDCG@10 0.22 against 0.95 for BM25), and fusing noise with a
good ranking drags the good one down. :func:`effective_weights` therefore turns the dense weight
down to :data:`BLIND_DENSE_FACTOR` of itself in that case.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

RRF_K = 60
FUSIONS = ("convex", "rrf")
# What is left of the dense weight when the encoder does not know the language: small enough
# never to reorder the keyword ranking much, large enough to rank chunks BM25 did not find.
BLIND_DENSE_FACTOR = 0.0

_CYRILLIC_LETTER = re.compile("[\u0400-\u04ff]")
_LATIN_LETTER = re.compile("[A-Za-z]")


@dataclass(frozen=True)
class Hit:
    """A fused result. ``dense``/``keyword`` are the raw scores (cosine, BM25) and ranks of the
    chunk in each list, or None when the list did not return it."""

    chunk_id: int
    score: float
    dense: float | None = None
    keyword: float | None = None
    dense_rank: int | None = None
    keyword_rank: int | None = None


@dataclass(frozen=True)
class Weights:
    dense: float
    keyword: float
    reason: str = ""


def text_language(text: str) -> str:
    """ "ru" when most letters are Cyrillic, "en" when most are Latin, "" when there are none.
    (Latin script is taken for English: the only other language the stemmers know.)"""
    cyrillic = len(_CYRILLIC_LETTER.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    if cyrillic == latin == 0:
        return ""
    return "ru" if cyrillic > latin else "en"


def corpus_language(latin_tokens: int, cyrillic_tokens: int) -> str:
    """The dominant language of a knowledge base from its token counts; "" when empty or mixed
    (neither script above 70 %)."""
    total = latin_tokens + cyrillic_tokens
    if total == 0:
        return ""
    if cyrillic_tokens >= 0.7 * total:
        return "ru"
    if latin_tokens >= 0.7 * total:
        return "en"
    return ""


def knows(languages: frozenset[str], language: str) -> bool:
    return not language or "*" in languages or language in languages


def effective_weights(
    dense: float,
    keyword: float,
    *,
    query_language: str,
    corpus_languages: Sequence[str],
    encoder_languages: frozenset[str],
) -> Weights:
    """The weights to fuse with: the dense one reduced when the encoder does not know the
    query's language or the language of any of the searched knowledge bases."""
    unknown = sorted(
        {lang for lang in (query_language, *corpus_languages) if not knows(encoder_languages, lang)}
    )
    if unknown and keyword > 0:
        return Weights(
            dense * BLIND_DENSE_FACTOR,
            keyword,
            f"the embedding model does not know {', '.join(unknown)}: keyword ranking leads",
        )
    return Weights(dense, keyword)


def fuse(
    dense: Sequence[tuple[int, float]],
    keyword: Sequence[tuple[int, float]],
    weights: Weights,
    *,
    method: str = "convex",
    k: int = RRF_K,
) -> list[Hit]:
    """Both ranked lists (chunk id, score; best first) fused by ``method`` (``convex`` or
    ``rrf``); best first, ties by chunk id. A list with weight 0 only contributes its scores to
    the breakdown of chunks the other list returned."""
    if method not in FUSIONS:
        raise ValueError(f"unknown fusion {method!r}")
    total = weights.dense + weights.keyword
    parts = {
        "dense": _contributions(dense, method, k),
        "keyword": _contributions(keyword, method, k),
    }
    scale = total if method == "convex" else total / (k + 1)
    fused: dict[int, float] = {}
    for side, weight in (("dense", weights.dense), ("keyword", weights.keyword)):
        if weight > 0:
            for chunk_id, (_rank, _score, value) in parts[side].items():
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight * value
    hits = []
    for chunk_id, value in fused.items():
        d = parts["dense"].get(chunk_id)
        kw = parts["keyword"].get(chunk_id)
        hits.append(
            Hit(
                chunk_id=chunk_id,
                score=value / scale if scale > 0 else 0.0,
                dense=d[1] if d else None,
                keyword=kw[1] if kw else None,
                dense_rank=d[0] if d else None,
                keyword_rank=kw[0] if kw else None,
            )
        )
    hits.sort(key=lambda h: (-h.score, h.chunk_id))
    return hits


def _contributions(
    ranked: Sequence[tuple[int, float]], method: str, k: int
) -> dict[int, tuple[int, float, float]]:
    """chunk id -> (rank, raw score, unweighted contribution to the fused score)."""
    if not ranked:
        return {}
    if method == "rrf":
        return {cid: (r, s, 1.0 / (k + r)) for r, (cid, s) in enumerate(ranked, start=1)}
    scores = [s for _, s in ranked]
    low, high = min(scores), max(scores)
    span = high - low
    return {
        cid: (r, s, (s - low) / span if span > 0 else 1.0)
        for r, (cid, s) in enumerate(ranked, start=1)
    }


def single(ranked: Sequence[tuple[int, float]], *, side: str) -> list[Hit]:
    """One list as hits (dense-only or keyword-only search): the score is the list's own."""
    hits = []
    for rank, (chunk_id, score) in enumerate(ranked, start=1):
        if side == "dense":
            hits.append(Hit(chunk_id, score, dense=score, dense_rank=rank))
        else:
            hits.append(Hit(chunk_id, score, keyword=score, keyword_rank=rank))
    return hits
