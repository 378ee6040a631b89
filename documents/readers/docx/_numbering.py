"""Styles and list numbering: the label ("1.2.", "а)", "IV.", "•") each list paragraph shows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Style:
    based_on: str | None = None
    name: str = ""
    outline: int | None = None
    num: tuple[str, int] | None = None


@dataclass
class Level:
    fmt: str = "decimal"
    text: str = "%1."
    start: int = 1


@dataclass
class Numbering:
    levels: dict[str, dict[int, Level]] = field(default_factory=dict)
    counters: dict[str, list[int]] = field(default_factory=dict)

    def label(self, num_id: str, ilvl: int) -> str:
        levels = self.levels.get(num_id)
        if not levels:
            return ""
        counters = self.counters.setdefault(num_id, [0] * 9)
        ilvl = min(max(ilvl, 0), 8)
        level = levels.get(ilvl, Level())
        counters[ilvl] = (counters[ilvl] or level.start - 1) + 1
        for deeper in range(ilvl + 1, 9):
            counters[deeper] = 0
        if level.fmt == "bullet":
            return "•"
        if level.fmt == "none":
            return ""

        def number(match: re.Match[str]) -> str:
            i = int(match.group(1)) - 1
            lvl = levels.get(i, Level())
            return format_number(counters[i] or lvl.start, lvl.fmt)

        return re.sub(r"%(\d)", number, level.text)


def format_number(n: int, fmt: str) -> str:
    if fmt in ("lowerLetter", "upperLetter"):
        letter = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt in ("russianLower", "russianUpper"):
        letter = "абвгдежзиклмнопрстуфхцчшщэюя"[(n - 1) % 28]
        return letter.upper() if fmt == "russianUpper" else letter
    if fmt in ("lowerRoman", "upperRoman"):
        roman = roman_numeral(n)
        return roman if fmt == "upperRoman" else roman.lower()
    return str(n)


def roman_numeral(n: int) -> str:
    out = ""
    for value, numeral in (
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ):
        while n >= value:
            out, n = out + numeral, n - value
    return out
