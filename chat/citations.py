"""Which sources an answer actually cited: ``[1]``, ``[2, 3]``, ``[1][4]``, ``[2-4]``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

_BRACKET = re.compile("\\[(\\s*\\d+(?:\\s*(?:[,;]|[-\u2013\u2014])\\s*\\d+)*\\s*)\\]")
_RANGE = re.compile("(\\d+)\\s*[-\u2013\u2014]\\s*(\\d+)")
_MAX_RANGE = 50


def cited_numbers(text: str, count: int) -> list[int]:
    """The source numbers (1..``count``) that ``text`` cites, ascending, each once. Numbers
    outside the sources (a year in brackets, a hallucinated [9]) are ignored."""
    found: set[int] = set()
    for match in _BRACKET.finditer(text):
        inner = match.group(1)
        for low, high in _RANGE.findall(inner):
            start, end = int(low), int(high)
            if start <= end and end - start <= _MAX_RANGE:
                found.update(range(start, end + 1))
        for part in re.split(r"[,;]", _RANGE.sub("", inner)):
            if part.strip():
                found.add(int(part))
    return sorted(n for n in found if 1 <= n <= count)


def resolve(text: str, sources: Sequence[T]) -> list[tuple[int, T]]:
    """The ``(number, source)`` pairs ``text`` cites, where source ``n`` is ``sources[n-1]``."""
    return [(n, sources[n - 1]) for n in cited_numbers(text, len(sources))]
