"""WordprocessingML read by local name (Transitional and Strict namespaces alike)."""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

SKIPPED = {"pPr", "rPr", "del", "delText", "instrText", "Fallback", "commentReference"}
WRAPPERS = {
    "sdt",
    "sdtContent",
    "customXml",
    "ins",
    "smartTag",
    "moveTo",
    "AlternateContent",
    "Choice",
}


def local_name(element: etree._Element) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def attr(element: etree._Element | None, name: str) -> str | None:
    """An attribute by local name (``w:val`` in either namespace)."""
    if element is None:
        return None
    for key, value in element.attrib.items():
        if key == name or str(key).endswith("}" + name):
            return str(value)
    return None


def first_child(element: etree._Element | None, name: str) -> etree._Element | None:
    if element is None:
        return None
    return next((c for c in element if local_name(c) == name), None)


def children_named(element: etree._Element, name: str) -> Iterator[etree._Element]:
    """Children called ``name``, looking through content controls and other wrappers."""
    for child in element:
        local = local_name(child)
        if local == name:
            yield child
        elif local in WRAPPERS:
            yield from children_named(child, name)


def paragraph_text(p: etree._Element, boxes: list[etree._Element]) -> str:
    """Visible text of a paragraph; text boxes found inside are appended to ``boxes``."""
    parts: list[str] = []

    def walk(element: etree._Element) -> None:
        for child in element:
            local = local_name(child)
            if local in SKIPPED:
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
                parts.append(f"[{attr(child, 'id')}]")
            elif local == "txbxContent":
                boxes.append(child)
            else:
                walk(child)

    walk(p)
    return "".join(parts)


def all_text(element: etree._Element | None, name: str) -> str:
    if element is None:
        return ""
    return " ".join((e.text or "").strip() for e in element.iter() if local_name(e) == name).strip()


def chart_points(element: etree._Element | None) -> list[str]:
    if element is None:
        return []
    return [all_text(pt, "v") for pt in element.iter() if local_name(pt) == "pt"]


def as_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
