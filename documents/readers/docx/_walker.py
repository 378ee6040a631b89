"""The walker: body, tables, notes, charts, headers and footers of a DOCX into blocks."""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from documents.readers._structure import StructureBuilder, render_table
from documents.readers._types import UnreadableDocument
from documents.readers.docx._numbering import Level, Numbering, Style
from documents.readers.docx._package import NOT_A_DOCX, Package
from documents.readers.docx._xml import (
    WRAPPERS,
    all_text,
    as_int,
    attr,
    chart_points,
    children_named,
    first_child,
    local_name,
    paragraph_text,
)

HEADING_NAME = re.compile(r"^(?:heading|заголовок)\s*(\d)$", re.I)
CAPTION_TEXT = re.compile(
    r"^(?:table|figure|таблица|рисунок|рис\.)\s*(?:\d|[A-Z\u0410-\u042f][.\d\s])", re.I
)


class Reader:
    def __init__(self, package: Package) -> None:
        self.package = package
        self.builder = StructureBuilder()
        self.styles = self._styles()
        self.numbering = self._numbering()

    def read(self) -> StructureBuilder:
        root = self.package.xml(self.package.main)
        body = first_child(root, "body") if root is not None else None
        if body is None:
            raise UnreadableDocument(NOT_A_DOCX)
        self._blocks(body)
        self._notes("footnotes", "footnote")
        self._notes("endnotes", "endnote")
        self._charts()
        self._headers_and_footers()
        return self.builder

    def _styles(self) -> dict[str, Style]:
        styles: dict[str, Style] = {}
        for root in self.package.related("styles"):
            for element in root:
                if local_name(element) != "style" or attr(element, "styleId") is None:
                    continue
                ppr = first_child(element, "pPr")
                numpr = first_child(ppr, "numPr")
                num_id = attr(first_child(numpr, "numId"), "val")
                styles[str(attr(element, "styleId"))] = Style(
                    based_on=attr(first_child(element, "basedOn"), "val"),
                    name=attr(first_child(element, "name"), "val") or "",
                    outline=as_int(attr(first_child(ppr, "outlineLvl"), "val")),
                    num=(num_id, as_int(attr(first_child(numpr, "ilvl"), "val")) or 0)
                    if num_id
                    else None,
                )
        return styles

    def _numbering(self) -> Numbering:
        numbering = Numbering()
        for root in self.package.related("numbering"):
            abstract: dict[str, dict[int, Level]] = {}
            for element in root:
                if local_name(element) == "abstractNum":
                    abstract[str(attr(element, "abstractNumId"))] = {
                        as_int(attr(lvl, "ilvl")) or 0: Level(
                            fmt=attr(first_child(lvl, "numFmt"), "val") or "decimal",
                            text=attr(first_child(lvl, "lvlText"), "val") or "",
                            start=as_int(attr(first_child(lvl, "start"), "val")) or 1,
                        )
                        for lvl in element
                        if local_name(lvl) == "lvl"
                    }
            for element in root:
                if local_name(element) == "num":
                    ref = attr(first_child(element, "abstractNumId"), "val")
                    numbering.levels[str(attr(element, "numId"))] = abstract.get(str(ref), {})
        return numbering

    def _style_chain(self, style_id: str | None) -> Iterator[Style]:
        seen: set[str] = set()
        while style_id and style_id not in seen and style_id in self.styles:
            seen.add(style_id)
            yield self.styles[style_id]
            style_id = self.styles[style_id].based_on

    def _heading_level(self, ppr: etree._Element | None, style_id: str | None) -> int | None:
        own = as_int(attr(first_child(ppr, "outlineLvl"), "val"))
        if own is not None:
            return own + 1 if own < 9 else None
        for style in self._style_chain(style_id):
            match = HEADING_NAME.match(style.name.strip())
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
        return len(text) < 200 and bool(CAPTION_TEXT.match(text))

    def _list_position(
        self, ppr: etree._Element | None, style_id: str | None
    ) -> tuple[str, int] | None:
        numpr = first_child(ppr, "numPr")
        num_id = attr(first_child(numpr, "numId"), "val")
        if num_id is not None:
            return (
                (num_id, as_int(attr(first_child(numpr, "ilvl"), "val")) or 0)
                if num_id != "0"
                else None
            )
        return next((s.num for s in self._style_chain(style_id) if s.num), None)

    def _blocks(self, container: etree._Element) -> None:
        for child in container:
            local = local_name(child)
            if local == "p":
                self._paragraph(child)
            elif local == "tbl":
                self._table(child)
            elif local in WRAPPERS:
                self._blocks(child)

    def _paragraph(self, p: etree._Element) -> None:
        boxes: list[etree._Element] = []
        text = paragraph_text(p, boxes).strip()
        ppr = first_child(p, "pPr")
        style_id = attr(first_child(ppr, "pStyle"), "val")
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
        trs = list(children_named(tbl, "tr"))
        header_rows = sum(1 for _ in leading_header_rows(trs)) or 1
        for index, tr in enumerate(trs):
            row: list[str] = []
            for tc in children_named(tr, "tc"):
                tcpr = first_child(tc, "tcPr")
                span = as_int(attr(first_child(tcpr, "gridSpan"), "val")) or 1
                merge = first_child(tcpr, "vMerge")
                column = len(row)
                if merge is not None and attr(merge, "val") != "restart":
                    cell = above.get(column, "")
                else:
                    cell = self._cell_text(tc, later)
                    above[column] = cell
                row.extend([cell] + [cell if index < header_rows else ""] * (span - 1))
            rows.append(row)
        if len(rows) > header_rows > 1:
            rows = [merge_header(rows[:header_rows]), *rows[header_rows:]]
        self.builder.add("table", render_table(rows))
        for element in later:
            self._table(element) if local_name(element) == "tbl" else self._blocks(element)

    def _charts(self) -> None:
        """Charts: the title as a caption, the data as a table (category, then each series)."""
        for root in self.package.related("chart"):
            titles = [all_text(t, "t") for t in root.iter() if local_name(t) == "title"]
            for title in titles:
                self.builder.add("caption", title)
            series = [s for s in root.iter() if local_name(s) == "ser"]
            columns = [
                [all_text(first_child(s, "tx"), "v"), *chart_points(first_child(s, "val"))]
                for s in series
            ]
            categories = chart_points(first_child(series[0], "cat")) if series else []
            if columns:
                rows = [["", *(c[0] for c in columns)]]
                for i, category in enumerate(categories or [""] * (len(columns[0]) - 1)):
                    rows.append([category, *(c[i + 1] if i + 1 < len(c) else "" for c in columns)])
                self.builder.add("table", render_table(rows))

    def _cell_text(self, tc: etree._Element, later: list[etree._Element]) -> str:
        parts: list[str] = []
        for child in tc:
            local = local_name(child)
            if local == "p":
                parts.append(paragraph_text(child, later))
            elif local == "tbl":
                later.append(child)
            elif local in WRAPPERS:
                parts.append(self._cell_text(child, later))
        return " ".join(part.strip() for part in parts if part.strip())

    def _notes(self, part: str, tag: str) -> None:
        for root in self.package.related(part):
            for note in root:
                if local_name(note) != tag or attr(note, "type") in (
                    "separator",
                    "continuationSeparator",
                    "continuationNotice",
                ):
                    continue
                before = len(self.builder.blocks)
                self._blocks(note)
                self._mark_first(before, f"[{attr(note, 'id')}] ")

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


def leading_header_rows(rows: list[etree._Element]) -> Iterator[etree._Element]:
    """Leading rows marked as repeating header rows (``w:tblHeader``)."""
    for row in rows:
        flag = first_child(first_child(row, "trPr"), "tblHeader")
        if flag is None or attr(flag, "val") in ("0", "false"):
            return
        yield row


def merge_header(rows: list[list[str]]) -> list[str]:
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
