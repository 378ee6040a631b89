"""Turns a flat stream of headings and paragraphs into blocks that know their heading path."""

from __future__ import annotations

import re

from documents.readers._types import Block, BlockKind

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_MANY_NEWLINES = re.compile(r"\s*\n\s*")


def clean_inline(text: str) -> str:
    """Collapse runs of spaces and line breaks into single spaces (text of one paragraph)."""
    return _SPACES.sub(" ", _MANY_NEWLINES.sub(" ", text.replace("\u00ad", ""))).strip()


def clean_lines(text: str) -> str:
    """Collapse spaces within lines but keep single line breaks (tables, addresses, verse)."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.replace("\u00ad", "").splitlines())
    return "\n".join(line for line in lines if line)


class StructureBuilder:
    """Collects blocks in reading order and tracks the heading stack."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._stack: list[tuple[int, str]] = []

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self._stack)

    def heading(self, text: str, level: int) -> None:
        text = clean_inline(text)
        if not text:
            return
        level = max(1, level)
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        self.blocks.append(Block("heading", text, level, self.path))

    def add(self, kind: BlockKind, text: str, level: int = 0, *, keep_lines: bool = False) -> None:
        text = clean_lines(text) if kind == "table" or keep_lines else clean_inline(text)
        if kind == "table":
            text = text.replace("\n\x00\n", "\n\n")  # row separator survives clean_lines
        if text:
            self.blocks.append(Block(kind, text, level, self.path))


ROW_SEPARATOR = "\n\x00\n"


def render_table(rows: list[list[str]], *, has_header: bool = True) -> str:
    """Render rows as ``Header: value`` lines, one paragraph per row, so that every row keeps
    its header wherever the table is split. Pass the result to ``StructureBuilder.add``."""
    rows = [[clean_inline(c) for c in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    if len(rows) == 1 or not has_header:
        return ROW_SEPARATOR.join(" | ".join(c for c in row if c) for row in rows)
    header, body = rows[0], rows[1:]
    rendered = []
    for row in body:
        lines = []
        for i, cell in enumerate(row):
            if not cell:
                continue
            name = header[i] if i < len(header) else ""
            lines.append(f"{name}: {cell}" if name and name != cell else cell)
        if lines:
            rendered.append("\n".join(lines))
    if not rendered:  # only a header row carries text
        return " | ".join(c for c in header if c)
    return ROW_SEPARATOR.join(rendered)
