"""Plain data that every reader returns: pages made of structured blocks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

BlockKind = Literal["heading", "paragraph", "list_item", "table", "caption"]

#: Blocks of a page are joined with this separator to form ``Page.text``.
BLOCK_SEPARATOR = "\n\n"


def gettext_noop(message: str) -> str:
    """Marks a reason for the Russian catalogue (``makemessages`` finds it by this name); the
    reason stays English here and is translated when shown (``documents.reasons``)."""
    return message


class UnreadableDocument(Exception):
    """The file cannot be turned into text. ``reason`` is a sentence a user can read and act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Block:
    """A structural unit of a page.

    ``level`` is the heading level (1 = top) for headings and the nesting depth (0 = top) for
    list items; 0 otherwise. ``heading_path`` lists the headings the block sits under; for a
    heading it ends with the heading itself. A table's text holds one row per paragraph
    (rows separated by a blank line), each row as ``Header: value`` lines.
    """

    kind: BlockKind
    text: str
    level: int = 0
    heading_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    """One page of a document. ``number`` is the physical 1-based page for PDFs and ``None``
    for formats without pages (the whole document is then one page).

    ``text`` is the blocks' texts joined by a blank line; character offsets of chunks point
    into it.
    """

    number: int | None
    text: str
    blocks: tuple[Block, ...]

    @classmethod
    def from_blocks(cls, number: int | None, blocks: Iterable[Block]) -> Page:
        kept = tuple(b for b in blocks if b.text.strip())
        return cls(number=number, text=BLOCK_SEPARATOR.join(b.text for b in kept), blocks=kept)
