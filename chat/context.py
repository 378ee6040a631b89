"""Context optimisation: which passages and how much history go into the prompt.

Plain data in, plain data out. Near-duplicate and overlapping passages are dropped (the better
scored one stays); the passages are kept best first within a token budget computed from the
model's context window minus the system prompt, the question, the history and a reserve for the
answer; history is trimmed oldest first, and never takes more than half of what is left.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from providers.base import ChatMessage

DEFAULT_CONTEXT_WINDOW = 8192
# Context windows (tokens) of the models we know; others get DEFAULT_CONTEXT_WINDOW.
CONTEXT_WINDOWS: dict[str, int] = {
    "offline-extractive": 32_768,
    "yandexgpt-lite": 32_768,
    "yandexgpt": 32_768,
    "yandexgpt-32k": 32_768,
    "GigaChat": 32_768,
    "GigaChat-2": 131_072,
    "GigaChat-2-Pro": 131_072,
    "GigaChat-2-Max": 131_072,
    "GigaChat-Pro": 32_768,
    "GigaChat-Max": 32_768,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "llama3.2": 131_072,
}
DEFAULT_ANSWER_RESERVE = 1024
# Two passages whose word shingles overlap this much say the same thing.
NEAR_DUPLICATE = 0.8
# Two passages of one document whose character ranges overlap by this share of the shorter.
OVERLAP = 0.5
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk as the prompt and the citations see it."""

    chunk_id: int
    document_id: int
    title: str
    file_name: str
    text: str
    page: int | None
    score: float
    char_start: int = 0
    char_end: int = 0
    dense_score: float | None = None  # cosine to the question (usage: "no good context")
    encoder: str = ""  # the embedding model of its knowledge base (the weak-passage rule)


@dataclass(frozen=True)
class ContextPlan:
    passages: tuple[Passage, ...]
    history: tuple[ChatMessage, ...]
    dropped_duplicates: int
    dropped_for_budget: int
    dropped_history: int
    budget: int


def estimate_tokens(text: str) -> int:
    """A cautious token count: about three characters a token, which over-counts English and
    fits Russian in the tokenizers of the providers we use."""
    return len(text) // 3 + 1


def context_window(model: str) -> int:
    return CONTEXT_WINDOWS.get(model, DEFAULT_CONTEXT_WINDOW)


def _shingles(text: str) -> set[int]:
    """The word trigrams of ``text``, case-folded (the whole text when it has fewer words), as
    hashes: comparing two sets of ints is several times faster than of tuples of strings."""
    words = _WORD.findall(text.lower())
    if len(words) < 3:
        return {hash(tuple(words))} if words else set()
    return set(map(hash, zip(words, words[1:], words[2:], strict=False)))


def _similar(a: set[int], b: set[int]) -> bool:
    if not a or not b:
        return False
    return len(a & b) / min(len(a), len(b)) >= NEAR_DUPLICATE


def _overlapping(a: Passage, b: Passage) -> bool:
    if a.document_id != b.document_id or a.char_end <= a.char_start or b.char_end <= b.char_start:
        return False
    shared = min(a.char_end, b.char_end) - max(a.char_start, b.char_start)
    shorter = min(a.char_end - a.char_start, b.char_end - b.char_start)
    return shared > 0 and shared / shorter >= OVERLAP


def _repeats(passage: Passage, shingles: set[int], kept: list[tuple[Passage, set[int]]]) -> bool:
    return any(_overlapping(passage, k) or _similar(shingles, s) for k, s in kept)


def deduplicate(passages: Sequence[Passage]) -> list[Passage]:
    """``passages`` (best first) without the ones that repeat a better one: the same text
    (re-uploaded files, boilerplate) or an overlapping range of the same document."""
    kept: list[tuple[Passage, set[int]]] = []
    for passage in passages:
        shingles = _shingles(passage.text)
        if not _repeats(passage, shingles, kept):
            kept.append((passage, shingles))
    return [p for p, _ in kept]


def trim_history(history: Sequence[ChatMessage], limit: int) -> list[ChatMessage]:
    """The newest messages of ``history`` that fit in ``limit`` tokens, oldest dropped first;
    the kept part starts with a user message, so that no answer is left without its question."""
    kept: list[ChatMessage] = []
    used = 0
    for message in reversed(history):
        cost = estimate_tokens(message.content)
        if used + cost > limit:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    while kept and kept[0].role != "user":
        kept.pop(0)
    return kept


def plan_context(
    *,
    passages: Sequence[Passage],
    history: Sequence[ChatMessage],
    fixed_text: str,
    window: int,
    answer_reserve: int = DEFAULT_ANSWER_RESERVE,
    limit: int | None = None,
) -> ContextPlan:
    """What fits in ``window`` tokens: ``fixed_text`` (system prompt and question) always goes,
    ``answer_reserve`` stays free for the answer; history gets at most half of the rest, trimmed
    oldest first; passages fill what remains, best first, after deduplication, ``limit`` at
    most (the passages after the last one chosen are not examined)."""
    free = max(window - answer_reserve - estimate_tokens(fixed_text), 0)
    kept_history = trim_history(history, free // 2)
    budget = free - sum(estimate_tokens(m.content) for m in kept_history)
    chosen: list[Passage] = []
    kept: list[tuple[Passage, set[int]]] = []  # not repeating a better one (deduplicate)
    duplicates = used = 0
    for passage in passages:
        if limit is not None and len(chosen) == limit:
            break
        shingles = _shingles(passage.text)
        if _repeats(passage, shingles, kept):
            duplicates += 1
            continue
        kept.append((passage, shingles))
        cost = estimate_tokens(passage.text) + 20  # the source tag and its attributes
        if used + cost <= budget:
            chosen.append(passage)
            used += cost
    return ContextPlan(
        passages=tuple(chosen),
        history=tuple(kept_history),
        dropped_duplicates=duplicates,
        dropped_for_budget=len(kept) - len(chosen),
        dropped_history=len(history) - len(kept_history),
        budget=budget,
    )
