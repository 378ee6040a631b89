"""HTML: scripts and styles are dropped; headings, paragraphs, lists and tables keep their shape."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import lxml.html  # type: ignore[import-untyped,unused-ignore]
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from documents.readers import txt
from documents.readers._structure import StructureBuilder, render_table
from documents.readers._types import Page, UnreadableDocument, gettext_noop

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_DROP = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object", "button")
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_BLOCKS = {"p", "pre", "blockquote", "address", "dt", "dd", "figcaption", "summary"}
_CONTAINERS = {
    "div",
    "section",
    "article",
    "main",
    "body",
    "html",
    "header",
    "footer",
    "aside",
    "nav",
    "form",
    "fieldset",
    "details",
    "figure",
    "ul",
    "ol",
    "dl",
    "center",
    "span",
    "font",
}


def read(path: Path) -> list[Page]:
    """Read an HTML file as one unpaged page. Raises ``UnreadableDocument`` when it has no
    visible text or cannot be parsed."""
    return [parse(decode_html(txt._read_bytes(path)))]


def iter_pages(path: Path) -> Iterator[Page]:
    """Same as ``read``; an HTML file is a single page."""
    yield from read(path)


def decode_html(data: bytes) -> str:
    """Decode with the charset the page declares, else detect it like plain text."""
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        try:
            return data.decode(declared.group(1).decode("ascii"), errors="replace").lstrip("\ufeff")
        except LookupError:
            pass
    return txt.decode_bytes(data)


def parse(source: str) -> Page:
    """Turn HTML source into a page of blocks."""
    try:
        root = lxml.html.document_fromstring(_XML_DECL.sub("", source))
    except (etree.ParserError, ValueError) as exc:
        raise UnreadableDocument(
            gettext_noop("This HTML file cannot be read; it may be damaged.")
        ) from exc
    etree.strip_elements(root, *_DROP, etree.Comment, with_tail=False)
    builder = StructureBuilder()
    _walk(root, builder)
    page = Page.from_blocks(None, builder.blocks)
    if not page.blocks:
        raise UnreadableDocument(gettext_noop("The HTML page contains no visible text."))
    return page


def _walk(element: lxml.html.HtmlElement, builder: StructureBuilder) -> None:
    """Emit blocks for ``element``'s children; loose text between blocks becomes paragraphs."""
    loose: list[str] = [element.text or ""]
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if (
            tag in _HEADINGS
            or tag in _BLOCKS
            or tag in {"li", "table", "caption"}
            or (tag in _CONTAINERS and _has_block_child(child))
        ):
            builder.add("paragraph", "".join(loose))
            loose = []
            _emit(child, tag, builder)
        else:
            loose.append(child.text_content() if tag != "br" else "\n")
        loose.append(child.tail or "")
    builder.add("paragraph", "".join(loose))


def _emit(child: lxml.html.HtmlElement, tag: str, builder: StructureBuilder) -> None:
    if tag in _HEADINGS:
        builder.heading(child.text_content(), _HEADINGS[tag])
    elif tag == "li":
        depth = sum(1 for a in child.iterancestors() if a.tag in ("ul", "ol")) - 1
        if _has_block_child(child):
            _walk(child, builder)
        else:
            builder.add("list_item", child.text_content(), max(0, depth))
    elif tag == "table":
        _table(child, builder)
    elif tag in ("caption", "figcaption"):
        builder.add("caption", child.text_content())
    elif tag in _BLOCKS and not _has_block_child(child):
        builder.add("paragraph", child.text_content())
    else:
        _walk(child, builder)


def _has_block_child(element: lxml.html.HtmlElement) -> bool:
    names = _BLOCKS | _CONTAINERS | set(_HEADINGS) | {"li", "table", "caption"}
    return any(isinstance(c.tag, str) and c.tag in names - {"span", "font"} for c in element)


def _table(table: lxml.html.HtmlElement, builder: StructureBuilder) -> None:
    for caption in table.findall("caption"):
        builder.add("caption", caption.text_content())
    rows: list[list[str]] = []
    for tr in table.iter("tr"):
        if _nearest_table(tr) is not table:
            continue  # a nested table's row: rendered as its own table below
        rows.append([_text_outside_tables(c) for c in tr if c.tag in ("td", "th")])
    first = next((tr for tr in table.iter("tr") if _nearest_table(tr) is table), None)
    has_header = (first is not None and any(c.tag == "th" for c in first)) or len(rows) > 1
    builder.add("table", render_table(rows, has_header=has_header))
    for nested in table.iter("table"):
        if nested is not table and _nearest_table(nested.getparent()) is table:
            _table(nested, builder)


def _text_outside_tables(element: lxml.html.HtmlElement) -> str:
    """A cell's text without the nested tables inside it (they become blocks of their own)."""
    parts = [element.text or ""]
    for child in element:
        if child.tag != "table":
            parts.append(_text_outside_tables(child))
        parts.append(child.tail or "")
    return " ".join(parts)


def _nearest_table(element: lxml.html.HtmlElement | None) -> lxml.html.HtmlElement | None:
    while element is not None and element.tag != "table":
        element = element.getparent()
    return element
