"""Markdown: ``#`` headings become heading blocks, list items and pipe tables keep their shape."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from documents.readers import txt
from documents.readers._structure import StructureBuilder, render_table
from documents.readers._types import Page, UnreadableDocument, gettext_noop

_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_LIST = re.compile(r"^(\s*)(?:[-*+]|\d{1,9}[.)])\s+(.*)$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def read(path: Path) -> list[Page]:
    """Read a Markdown file as one unpaged page. Raises ``UnreadableDocument`` when empty."""
    return [parse(txt.decode_bytes(txt._read_bytes(path)))]


def iter_pages(path: Path) -> Iterator[Page]:
    """Same as ``read``; a Markdown file is a single page."""
    yield from read(path)


def parse(text: str) -> Page:
    """Turn Markdown source into a page of blocks (inline markup is kept as written)."""
    builder = StructureBuilder()
    _Parser(builder).feed(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    page = Page.from_blocks(None, builder.blocks)
    if not page.blocks:
        raise UnreadableDocument(gettext_noop("The file contains no text."))
    return page


class _Parser:
    def __init__(self, builder: StructureBuilder) -> None:
        self.b = builder
        self.para: list[str] = []
        self.table: list[str] = []
        self.fence: list[str] | None = None

    def feed(self, lines: list[str]) -> None:
        for line in lines:
            self._line(line)
        self._flush()
        if self.fence:
            self.b.add("paragraph", "\n".join(self.fence))

    def _line(self, line: str) -> None:
        if self.fence is not None:
            if _FENCE.match(line):
                self.b.add("paragraph", " ".join(self.fence))
                self.fence = None
            else:
                self.fence.append(line)
            return
        if _FENCE.match(line):
            self._flush()
            self.fence = []
        elif heading := _ATX.match(line):
            self._flush()
            self.b.heading(heading.group(2), len(heading.group(1)))
        elif _SETEXT.match(line) and len(self.para) == 1 and not self.table:
            self.b.heading(self.para.pop(), 1 if line.strip()[0] == "=" else 2)
        elif line.strip().startswith("|") or (self.table and "|" in line):
            if self.para and not self.table:
                self._flush()
            self.table.append(line)
        elif item := _LIST.match(line):
            self._flush()
            self.b.add("list_item", item.group(2), len(item.group(1).expandtabs(4)) // 2)
        elif not line.strip():
            self._flush()
        else:
            if self.table:
                self._flush()
            self.para.append(line)

    def _flush(self) -> None:
        if self.para:
            self.b.add("paragraph", " ".join(self.para))
            self.para = []
        if self.table:
            rows = [_cells(r) for r in self.table if not _TABLE_RULE.match(r)]
            has_header = len(self.table) > 1 and bool(_TABLE_RULE.match(self.table[1]))
            self.b.add("table", render_table(rows, has_header=has_header))
            self.table = []


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]
