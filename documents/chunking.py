"""Pages in, overlapping chunks out: paragraph-aware, structure-keeping, citation-exact.

Ground floor: plain data only. The caller maps a knowledge base's settings to
``ChunkingOptions`` and stores each ``ChunkDraft``.

Tokens are approximated by ``count_tokens``: every run of word characters counts as one
token and every other non-space character (punctuation, symbols) as one more. It is fast,
deterministic and script-neutral; subword tokenizers give somewhat more tokens for long or
rare words (and for Cyrillic), so keep ``max_tokens`` below the embedding model's limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, get_args

from documents.readers import BlockKind, Page

SplitRule = Literal["paragraph", "sentence", "fixed"]

_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'»”)\]]*\s+|(?<=[\u3002\uff01\uff1f])")
_ROW_BREAK = re.compile(r"\n\n")
_LINE_BREAK = re.compile(r"\n")
HEADING_SEPARATOR = " > "


def count_tokens(text: str) -> int:
    """Approximate token count: word runs plus punctuation marks (see the module docstring)."""
    return len(_TOKEN.findall(text))


@dataclass(frozen=True)
class ChunkingOptions:
    """How to cut pages into chunks.

    ``split_rule``: ``paragraph`` packs whole paragraphs and starts a new chunk at each
    heading; ``sentence`` packs sentences regardless of paragraph ends (still starting at
    headings); ``fixed`` cuts windows of ``max_tokens`` ignoring structure.
    ``max_tokens`` bounds a chunk's ``text``; ``overlap_tokens`` of the previous chunk's end
    are repeated at the start of the next one within a section; ``heading_context`` prefixes
    ``embed_text`` with the heading path.
    """

    split_rule: SplitRule | str = "paragraph"  # str: a KnowledgeBase.split_rule value
    max_tokens: int = 200
    overlap_tokens: int = 30
    heading_context: bool = True

    def __post_init__(self) -> None:
        if self.split_rule not in get_args(SplitRule):
            raise ValueError(f"unknown split rule {self.split_rule!r}")
        if self.max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise ValueError("overlap_tokens must be at least 0 and less than max_tokens")


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk ready to embed and store.

    ``text`` is the passage (shown in citations); ``embed_text`` is what to encode (``text``
    with the heading path in front when ``heading_context``). ``page_start``/``page_end`` are
    physical page numbers (``None`` for unpaged formats). ``char_start`` is an offset into
    ``page_start``'s ``Page.text`` and ``char_end`` an exclusive offset into ``page_end``'s,
    so a viewer can highlight the exact span. ``token_count`` counts ``text``.
    """

    ordinal: int
    text: str
    embed_text: str
    heading_path: tuple[str, ...]
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    token_count: int

    @property
    def heading_label(self) -> str:
        """The heading path as one string, e.g. ``"4 Requirements > 4.2 Tables"``."""
        return HEADING_SEPARATOR.join(self.heading_path)


@dataclass(frozen=True)
class _Unit:
    """A piece of a block that is never cut further; ``text == page.text[start:end]``."""

    text: str
    page: int | None
    start: int
    end: int
    tokens: int
    kind: BlockKind
    block: int
    heading_path: tuple[str, ...]
    context: str = ""
    overlap: bool = False


def iter_chunks(pages: Iterable[Page], options: ChunkingOptions) -> Iterator[ChunkDraft]:
    """Chunks of ``pages`` in order, numbered from 0.

    Streams: only the chunk being built (at most ``max_tokens`` plus a caption carried along)
    is held, so pages may come from a generator over a long PDF.
    """
    packer = _Packer(options)
    counter = _Counter()
    for page in pages:
        for unit in _units(page, options, counter):
            yield from packer.add(unit)
    yield from packer.finish()


def chunk_pages(pages: Iterable[Page], options: ChunkingOptions) -> list[ChunkDraft]:
    """All chunks of ``pages`` (see ``iter_chunks``)."""
    return list(iter_chunks(pages, options))


class _Counter:
    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def _units(page: Page, options: ChunkingOptions, counter: _Counter) -> Iterator[_Unit]:
    cursor = 0
    caption = ""
    for block in page.blocks:
        start = page.text.find(block.text, cursor)
        start = cursor if start < 0 else start
        cursor = start + len(block.text)
        unit = _Unit(
            block.text,
            page.number,
            start,
            cursor,
            count_tokens(block.text),
            block.kind,
            counter.next(),
            block.heading_path,
            caption if block.kind == "table" else "",
        )
        yield from _split(unit, options)
        caption = block.text if block.kind == "caption" else ""


def _split(unit: _Unit, options: ChunkingOptions) -> Iterator[_Unit]:
    """Cut a block into units that fit: tables by rows (then lines), prose by sentences
    (then token windows); ``fixed`` cuts token windows straight away."""
    limit = options.max_tokens
    if options.split_rule == "fixed":
        yield from _windows(unit, limit)
    elif unit.kind == "table":
        if unit.tokens <= limit:
            yield unit
            return
        for row in _pieces(unit, _ROW_BREAK):
            if row.tokens <= limit:
                yield row
            else:
                for line in _pieces(row, _LINE_BREAK):
                    yield from _windows(line, limit)
    elif unit.tokens <= limit and (options.split_rule == "paragraph" or unit.kind == "heading"):
        yield unit
    else:
        for sentence in _pieces(unit, _SENTENCE_END, sentences=True):
            yield from _windows(sentence, limit)


def _piece(unit: _Unit, start: int, end: int) -> _Unit:
    text = unit.text[start:end]
    return _Unit(
        text,
        unit.page,
        unit.start + start,
        unit.start + end,
        count_tokens(text),
        unit.kind,
        unit.block,
        unit.heading_path,
        unit.context,
    )


def _pieces(unit: _Unit, boundary: re.Pattern[str], *, sentences: bool = False) -> Iterator[_Unit]:
    """Split at ``boundary`` matches: a sentence keeps its closing punctuation, a row or line
    separator is dropped. A sentence boundary needs a non-lowercase letter after it, so
    "e.g. this" stays whole (as do lowercase-continued abbreviations in Russian)."""
    start = 0
    for match in boundary.finditer(unit.text):
        if sentences and (match.end() >= len(unit.text) or unit.text[match.end()].islower()):
            continue
        yield from _trimmed(unit, start, match.end() if sentences else match.start())
        start = match.end()
    yield from _trimmed(unit, start, len(unit.text))


def _trimmed(unit: _Unit, start: int, end: int) -> Iterator[_Unit]:
    """The piece ``start:end`` of ``unit`` without surrounding whitespace, if any text is left."""
    text = unit.text[start:end]
    stripped = text.strip()
    if stripped:
        lead = len(text) - len(text.lstrip())
        yield _piece(unit, start + lead, start + lead + len(stripped))


def _windows(unit: _Unit, size: int) -> Iterator[_Unit]:
    if unit.tokens <= size:
        yield unit
        return
    spans = [m.span() for m in _TOKEN.finditer(unit.text)]
    for first in range(0, len(spans), size):
        window = spans[first : first + size]
        yield _piece(unit, window[0][0], window[-1][1])


class _Packer:
    def __init__(self, options: ChunkingOptions) -> None:
        self.options = options
        self.units: list[_Unit] = []
        self.ordinal = 0

    @property
    def tokens(self) -> int:
        return sum(u.tokens for u in self.units)

    def add(self, unit: _Unit) -> Iterator[ChunkDraft]:
        structured = self.options.split_rule != "fixed"
        if not structured:
            yield from self._add_window(unit)
            return
        if structured and unit.kind == "heading" and not self._only_headings():
            yield from self._flush(keep_overlap=False)
        if self.units and self.tokens + unit.tokens > self.options.max_tokens:
            carry = self._trailing_captions() if structured else []
            if len(carry) == len(self._real()):
                carry = []
            body = self.units[: len(self.units) - len(carry)]
            self.units = body
            yield from self._flush(keep_overlap=not carry and unit.kind != "table")
            self.units = self._fit(self.units + carry, unit.tokens)
        self.units.append(unit)

    def _add_window(self, unit: _Unit) -> Iterator[ChunkDraft]:
        """Fixed windows: fill the chunk to exactly ``max_tokens``, cutting the unit."""
        while self.tokens + unit.tokens > self.options.max_tokens:
            room = self.options.max_tokens - self.tokens
            spans = [m.span() for m in _TOKEN.finditer(unit.text)]
            if room > 0:
                self.units.append(_piece(unit, spans[0][0], spans[room - 1][1]))
                unit = _piece(unit, spans[room][0], len(unit.text))
            yield from self._flush(keep_overlap=True)
            self.units = self._fit(self.units, unit.tokens)
        self.units.append(unit)

    def finish(self) -> Iterator[ChunkDraft]:
        yield from self._flush(keep_overlap=False)

    def _real(self) -> list[_Unit]:
        return [u for u in self.units if not u.overlap]

    def _only_headings(self) -> bool:
        return all(u.kind == "heading" for u in self._real())

    def _trailing_captions(self) -> list[_Unit]:
        """Headings and captions at the end of the chunk belong with what follows them."""
        carry: list[_Unit] = []
        for unit in reversed(self.units):
            if unit.overlap or unit.kind not in ("heading", "caption"):
                break
            carry.insert(0, unit)
        return carry

    def _fit(self, units: list[_Unit], incoming: int) -> list[_Unit]:
        """Drop overlap until the incoming unit fits."""
        while (
            units
            and units[0].overlap
            and sum(u.tokens for u in units) + incoming > self.options.max_tokens
        ):
            units = units[1:]
        return units

    def _flush(self, *, keep_overlap: bool) -> Iterator[ChunkDraft]:
        units, self.units = self.units, []
        if not any(not u.overlap for u in units):
            return
        yield self._draft(units)
        self.ordinal += 1
        if keep_overlap:
            self.units = _overlap(units, self.options.overlap_tokens)

    def _draft(self, units: list[_Unit]) -> ChunkDraft:
        parts: list[str] = []
        for previous, unit in zip([None, *units], units, strict=False):
            if previous is not None:
                same = previous.block == unit.block and unit.kind != "table"
                parts.append(" " if same else "\n\n")
            parts.append(unit.text)
        text = "".join(parts)
        first = next(u for u in units if not u.overlap)
        if first.context and first.context not in text:
            text = f"{first.context}\n\n{text}"
        path = next(u for u in reversed(units) if not u.overlap).heading_path
        shown = {u.text for u in units if u.kind == "heading"}
        prefix = HEADING_SEPARATOR.join(h for h in path if h not in shown)
        embed = f"{prefix}\n\n{text}" if prefix and self.options.heading_context else text
        return ChunkDraft(
            ordinal=self.ordinal,
            text=text,
            embed_text=embed,
            heading_path=path,
            page_start=units[0].page,
            page_end=units[-1].page,
            char_start=units[0].start,
            char_end=units[-1].end,
            token_count=count_tokens(text),
        )


def _overlap(units: list[_Unit], budget: int) -> list[_Unit]:
    """The last ``budget`` tokens of the flushed chunk, as overlap units (prose only)."""
    taken: list[_Unit] = []
    for unit in reversed(units):
        if budget <= 0 or unit.kind in ("table", "heading", "caption"):
            break
        if unit.tokens <= budget:
            taken.insert(0, _as_overlap(unit))
            budget -= unit.tokens
            continue
        spans = [m.span() for m in _TOKEN.finditer(unit.text)][-budget:]
        taken.insert(0, _as_overlap(_piece(unit, spans[0][0], len(unit.text))))
        break
    return taken


def _as_overlap(unit: _Unit) -> _Unit:
    return _Unit(
        unit.text,
        unit.page,
        unit.start,
        unit.end,
        unit.tokens,
        unit.kind,
        unit.block,
        unit.heading_path,
        unit.context,
        overlap=True,
    )
