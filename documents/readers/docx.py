"""DOCX: the package is read straight from its XML, so text users see is kept wherever it sits.

python-docx exposes body paragraphs and tables, but not content controls (``w:sdt``), text
boxes (``w:txbxContent``), footnotes or endnotes, and it raises on Strict-namespace files and
on packages with a missing part (two of our real test files). So this reader walks the XML
itself, matching elements by local name (Transitional and Strict namespaces alike), and
resolves heading levels, list numbering and table headers from the styles and numbering parts.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from documents.readers._structure import StructureBuilder, render_table
from documents.readers._types import Page, UnreadableDocument, gettext_noop

#: A DOCX whose parts unpack to more than this is refused before any parsing (zip bombs).
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
#: A part larger than ``_RATIO_FLOOR`` that compressed better than this is a zip bomb.
MAX_COMPRESSION_RATIO = 100
_RATIO_FLOOR = 10 * 1024 * 1024

NOT_A_DOCX = gettext_noop(
    "This file is not a Word document (.docx); save it as .docx and upload it again."
)
DAMAGED = gettext_noop(
    "This Word document is damaged or incomplete; open it in Word, save it, and upload again."
)
ZIP_BOMB = gettext_noop(
    "This Word document unpacks to far more data than a document holds (over 200 MB or an "
    "extreme compression ratio), so it was not opened; it may be a zip bomb."
)
EMPTY = gettext_noop("This Word document contains no text.")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
_HEADING_NAME = re.compile(r"^(?:heading|заголовок)\s*(\d)$", re.I)
_CAPTION_TEXT = re.compile(
    r"^(?:table|figure|таблица|рисунок|рис\.)\s*(?:\d|[A-Z\u0410-\u042f][.\d\s])", re.I
)
_SKIPPED = {"pPr", "rPr", "del", "delText", "instrText", "Fallback", "commentReference"}
_WRAPPERS = {
    "sdt",
    "sdtContent",
    "customXml",
    "ins",
    "smartTag",
    "moveTo",
    "AlternateContent",
    "Choice",
}


def read(path: Path) -> list[Page]:
    """Read a DOCX as one unpaged page: body, then footnotes, endnotes, headers and footers.

    Raises ``UnreadableDocument`` for a file that is not a DOCX, is damaged, a zip bomb, or
    has no text.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            _check_sizes(archive)
            blocks = _Reader(_Package(archive)).read()
    except zipfile.BadZipFile as exc:
        raise UnreadableDocument(DAMAGED) from exc
    except etree.XMLSyntaxError as exc:
        if exc.code == etree.ErrorTypes.ERR_NO_MEMORY:
            # libxml2 could not allocate: a memory limit, not damage (see iter_document).
            raise MemoryError(str(exc)) from exc
        raise UnreadableDocument(DAMAGED) from exc
    except (KeyError, ValueError, EOFError) as exc:
        raise UnreadableDocument(DAMAGED) from exc
    page = Page.from_blocks(None, blocks.blocks)
    if not page.blocks:
        raise UnreadableDocument(EMPTY)
    return [page]


def iter_pages(path: Path) -> Iterator[Page]:
    """Same as ``read``; a DOCX has no fixed pages."""
    yield from read(path)


def _check_sizes(archive: zipfile.ZipFile) -> None:
    total = 0
    for info in archive.infolist():
        total += info.file_size
        ratio = info.file_size / max(1, info.compress_size)
        if total > MAX_UNCOMPRESSED_BYTES or (
            info.file_size > _RATIO_FLOOR and ratio > MAX_COMPRESSION_RATIO
        ):
            raise UnreadableDocument(ZIP_BOMB)


def _local(element: etree._Element) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _attr(element: etree._Element | None, name: str) -> str | None:
    """An attribute by local name (``w:val`` in either namespace)."""
    if element is None:
        return None
    for key, value in element.attrib.items():
        if key == name or str(key).endswith("}" + name):
            return str(value)
    return None


def _child(element: etree._Element | None, name: str) -> etree._Element | None:
    if element is None:
        return None
    return next((c for c in element if _local(c) == name), None)


def _children(element: etree._Element, name: str) -> Iterator[etree._Element]:
    """Children called ``name``, looking through content controls and other wrappers."""
    for child in element:
        local = _local(child)
        if local == name:
            yield child
        elif local in _WRAPPERS:
            yield from _children(child, name)


class _Package:
    """The parts of the archive, found through relationships rather than fixed names."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.names = set(archive.namelist())
        main = self._targets("", "_rels/.rels", "officeDocument") or ["word/document.xml"]
        self.main = main[0]
        if self.main not in self.names:
            raise UnreadableDocument(NOT_A_DOCX)
        folder = posixpath.dirname(self.main)
        self.rels = posixpath.join(folder, "_rels", posixpath.basename(self.main) + ".rels")

    def xml(self, name: str) -> etree._Element | None:
        if name not in self.names:
            return None
        with self.archive.open(name) as fh:
            data = fh.read(MAX_UNCOMPRESSED_BYTES + 1)
        if len(data) > MAX_UNCOMPRESSED_BYTES:
            raise UnreadableDocument(ZIP_BOMB)
        return etree.fromstring(data, _PARSER)

    def related(self, kind: str) -> list[etree._Element]:
        """Parsed parts that the main document relates to with a type ending in ``kind``."""
        folder = posixpath.dirname(self.main)
        roots = (self.xml(name) for name in self._targets(folder, self.rels, kind))
        return [root for root in roots if root is not None]

    def _targets(self, folder: str, rels_name: str, kind: str) -> list[str]:
        rels = self.xml(rels_name)
        if rels is None:
            return []
        found = []
        for rel in rels:
            if _attr(rel, "Type") is None or _attr(rel, "TargetMode") == "External":
                continue
            if str(_attr(rel, "Type")).rsplit("/", 1)[-1] == kind:
                target = str(_attr(rel, "Target"))
                path = (
                    target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
                )
                found.append(posixpath.normpath(path))
        return found


@dataclass
class _Style:
    based_on: str | None = None
    name: str = ""
    outline: int | None = None
    num: tuple[str, int] | None = None


@dataclass
class _Level:
    fmt: str = "decimal"
    text: str = "%1."
    start: int = 1


@dataclass
class _Numbering:
    levels: dict[str, dict[int, _Level]] = field(default_factory=dict)
    counters: dict[str, list[int]] = field(default_factory=dict)

    def label(self, num_id: str, ilvl: int) -> str:
        levels = self.levels.get(num_id)
        if not levels:
            return ""
        counters = self.counters.setdefault(num_id, [0] * 9)
        ilvl = min(max(ilvl, 0), 8)
        level = levels.get(ilvl, _Level())
        counters[ilvl] = (counters[ilvl] or level.start - 1) + 1
        for deeper in range(ilvl + 1, 9):
            counters[deeper] = 0
        if level.fmt == "bullet":
            return "•"
        if level.fmt == "none":
            return ""

        def number(match: re.Match[str]) -> str:
            i = int(match.group(1)) - 1
            lvl = levels.get(i, _Level())
            return _format_number(counters[i] or lvl.start, lvl.fmt)

        return re.sub(r"%(\d)", number, level.text)


def _format_number(n: int, fmt: str) -> str:
    if fmt in ("lowerLetter", "upperLetter"):
        letter = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt in ("russianLower", "russianUpper"):
        letter = "абвгдежзиклмнопрстуфхцчшщэюя"[(n - 1) % 28]
        return letter.upper() if fmt == "russianUpper" else letter
    if fmt in ("lowerRoman", "upperRoman"):
        roman = _roman(n)
        return roman if fmt == "upperRoman" else roman.lower()
    return str(n)


def _roman(n: int) -> str:
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


class _Reader:
    def __init__(self, package: _Package) -> None:
        self.package = package
        self.builder = StructureBuilder()
        self.styles = self._styles()
        self.numbering = self._numbering()

    def read(self) -> StructureBuilder:
        root = self.package.xml(self.package.main)
        body = _child(root, "body") if root is not None else None
        if body is None:
            raise UnreadableDocument(NOT_A_DOCX)
        self._blocks(body)
        self._notes("footnotes", "footnote")
        self._notes("endnotes", "endnote")
        self._charts()
        self._headers_and_footers()
        return self.builder

    def _styles(self) -> dict[str, _Style]:
        styles: dict[str, _Style] = {}
        for root in self.package.related("styles"):
            for element in root:
                if _local(element) != "style" or _attr(element, "styleId") is None:
                    continue
                ppr = _child(element, "pPr")
                numpr = _child(ppr, "numPr")
                num_id = _attr(_child(numpr, "numId"), "val")
                styles[str(_attr(element, "styleId"))] = _Style(
                    based_on=_attr(_child(element, "basedOn"), "val"),
                    name=_attr(_child(element, "name"), "val") or "",
                    outline=_int(_attr(_child(ppr, "outlineLvl"), "val")),
                    num=(num_id, _int(_attr(_child(numpr, "ilvl"), "val")) or 0)
                    if num_id
                    else None,
                )
        return styles

    def _numbering(self) -> _Numbering:
        numbering = _Numbering()
        for root in self.package.related("numbering"):
            abstract: dict[str, dict[int, _Level]] = {}
            for element in root:
                if _local(element) == "abstractNum":
                    abstract[str(_attr(element, "abstractNumId"))] = {
                        _int(_attr(lvl, "ilvl")) or 0: _Level(
                            fmt=_attr(_child(lvl, "numFmt"), "val") or "decimal",
                            text=_attr(_child(lvl, "lvlText"), "val") or "",
                            start=_int(_attr(_child(lvl, "start"), "val")) or 1,
                        )
                        for lvl in element
                        if _local(lvl) == "lvl"
                    }
            for element in root:
                if _local(element) == "num":
                    ref = _attr(_child(element, "abstractNumId"), "val")
                    numbering.levels[str(_attr(element, "numId"))] = abstract.get(str(ref), {})
        return numbering

    def _style_chain(self, style_id: str | None) -> Iterator[_Style]:
        seen: set[str] = set()
        while style_id and style_id not in seen and style_id in self.styles:
            seen.add(style_id)
            yield self.styles[style_id]
            style_id = self.styles[style_id].based_on

    def _heading_level(self, ppr: etree._Element | None, style_id: str | None) -> int | None:
        own = _int(_attr(_child(ppr, "outlineLvl"), "val"))
        if own is not None:
            return own + 1 if own < 9 else None
        for style in self._style_chain(style_id):
            match = _HEADING_NAME.match(style.name.strip())
            if match:
                return int(match.group(1))
            if style.name.strip().lower() in ("title", "название"):
                return 1
            if style.outline is not None:
                return style.outline + 1 if style.outline < 9 else None
        return None

    def _is_caption(self, style_id: str | None, text: str) -> bool:
        names = {s.name.strip().lower() for s in self._style_chain(style_id)}
        if names & {"caption", "название объекта"}:
            return True
        return len(text) < 200 and bool(_CAPTION_TEXT.match(text))

    def _list_position(
        self, ppr: etree._Element | None, style_id: str | None
    ) -> tuple[str, int] | None:
        numpr = _child(ppr, "numPr")
        num_id = _attr(_child(numpr, "numId"), "val")
        if num_id is not None:
            return (
                (num_id, _int(_attr(_child(numpr, "ilvl"), "val")) or 0) if num_id != "0" else None
            )
        return next((s.num for s in self._style_chain(style_id) if s.num), None)

    def _blocks(self, container: etree._Element) -> None:
        for child in container:
            local = _local(child)
            if local == "p":
                self._paragraph(child)
            elif local == "tbl":
                self._table(child)
            elif local in _WRAPPERS:
                self._blocks(child)

    def _paragraph(self, p: etree._Element) -> None:
        boxes: list[etree._Element] = []
        text = _text(p, boxes).strip()
        ppr = _child(p, "pPr")
        style_id = _attr(_child(ppr, "pStyle"), "val")
        position = self._list_position(ppr, style_id)
        label = self.numbering.label(*position) if position and text else ""
        level = self._heading_level(ppr, style_id)
        if text and level is not None:
            self.builder.heading(f"{label} {text}" if label and label != "•" else text, level)
        elif text and self._is_caption(style_id, text):
            self.builder.add("caption", text)
        elif text and position:
            self.builder.add("list_item", f"{label} {text}" if label else text, position[1])
        elif text:
            self.builder.add("paragraph", text)
        for box in boxes:
            self._blocks(box)

    def _table(self, tbl: etree._Element) -> None:
        rows: list[list[str]] = []
        later: list[etree._Element] = []
        above: dict[int, str] = {}
        trs = list(_children(tbl, "tr"))
        header_rows = sum(1 for _ in _takewhile_header(trs)) or 1
        for index, tr in enumerate(trs):
            row: list[str] = []
            for tc in _children(tr, "tc"):
                tcpr = _child(tc, "tcPr")
                span = _int(_attr(_child(tcpr, "gridSpan"), "val")) or 1
                merge = _child(tcpr, "vMerge")
                column = len(row)
                if merge is not None and _attr(merge, "val") != "restart":
                    cell = above.get(column, "")
                else:
                    cell = self._cell_text(tc, later)
                    above[column] = cell
                row.extend([cell] + [cell if index < header_rows else ""] * (span - 1))
            rows.append(row)
        if len(rows) > header_rows > 1:
            rows = [_merge_header(rows[:header_rows]), *rows[header_rows:]]
        self.builder.add("table", render_table(rows))
        for element in later:
            self._table(element) if _local(element) == "tbl" else self._blocks(element)

    def _charts(self) -> None:
        """Charts: the title as a caption, the data as a table (category, then each series)."""
        for root in self.package.related("chart"):
            titles = [_all_text(t, "t") for t in root.iter() if _local(t) == "title"]
            for title in titles:
                self.builder.add("caption", title)
            series = [s for s in root.iter() if _local(s) == "ser"]
            columns = [
                [_all_text(_child(s, "tx"), "v"), *_points(_child(s, "val"))] for s in series
            ]
            categories = _points(_child(series[0], "cat")) if series else []
            if columns:
                rows = [["", *(c[0] for c in columns)]]
                for i, category in enumerate(categories or [""] * (len(columns[0]) - 1)):
                    rows.append([category, *(c[i + 1] if i + 1 < len(c) else "" for c in columns)])
                self.builder.add("table", render_table(rows))

    def _cell_text(self, tc: etree._Element, later: list[etree._Element]) -> str:
        parts: list[str] = []
        for child in tc:
            local = _local(child)
            if local == "p":
                parts.append(_text(child, later))
            elif local == "tbl":
                later.append(child)
            elif local in _WRAPPERS:
                parts.append(self._cell_text(child, later))
        return " ".join(part.strip() for part in parts if part.strip())

    def _notes(self, part: str, tag: str) -> None:
        for root in self.package.related(part):
            for note in root:
                if _local(note) != tag or _attr(note, "type") in (
                    "separator",
                    "continuationSeparator",
                    "continuationNotice",
                ):
                    continue
                before = len(self.builder.blocks)
                self._blocks(note)
                self._mark_first(before, f"[{_attr(note, 'id')}] ")

    def _mark_first(self, index: int, prefix: str) -> None:
        if index < len(self.builder.blocks):
            block = self.builder.blocks[index]
            self.builder.blocks[index] = type(block)(
                block.kind, prefix + block.text, block.level, block.heading_path
            )

    def _headers_and_footers(self) -> None:
        seen = {block.text for block in self.builder.blocks}
        for kind in ("header", "footer"):
            for root in self.package.related(kind):
                before = len(self.builder.blocks)
                self._blocks(root)
                fresh = [b for b in self.builder.blocks[before:] if b.text not in seen]
                seen.update(b.text for b in fresh)
                self.builder.blocks[before:] = fresh


def _text(p: etree._Element, boxes: list[etree._Element]) -> str:
    """Visible text of a paragraph; text boxes found inside are appended to ``boxes``."""
    parts: list[str] = []

    def walk(element: etree._Element) -> None:
        for child in element:
            local = _local(child)
            if local in _SKIPPED:
                continue
            if local == "t":
                parts.append(child.text or "")
            elif local == "tab":
                parts.append("\t")
            elif local in ("br", "cr"):
                parts.append("\n")
            elif local == "noBreakHyphen":
                parts.append("-")
            elif local in ("footnoteReference", "endnoteReference"):
                parts.append(f"[{_attr(child, 'id')}]")
            elif local == "txbxContent":
                boxes.append(child)
            else:
                walk(child)

    walk(p)
    return "".join(parts)


def _takewhile_header(rows: list[etree._Element]) -> Iterator[etree._Element]:
    """Leading rows marked as repeating header rows (``w:tblHeader``)."""
    for row in rows:
        flag = _child(_child(row, "trPr"), "tblHeader")
        if flag is None or _attr(flag, "val") in ("0", "false"):
            return
        yield row


def _merge_header(rows: list[list[str]]) -> list[str]:
    """Several header rows become one: each column's distinct labels joined by " / "."""
    width = max(len(row) for row in rows)
    merged = []
    for column in range(width):
        labels: list[str] = []
        for row in rows:
            label = row[column].strip() if column < len(row) else ""
            if label and label not in labels:
                labels.append(label)
        merged.append(" / ".join(labels))
    return merged


def _all_text(element: etree._Element | None, name: str) -> str:
    if element is None:
        return ""
    return " ".join((e.text or "").strip() for e in element.iter() if _local(e) == name).strip()


def _points(element: etree._Element | None) -> list[str]:
    if element is None:
        return []
    return [_all_text(pt, "v") for pt in element.iter() if _local(pt) == "pt"]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
