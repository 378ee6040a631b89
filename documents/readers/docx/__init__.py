"""DOCX: the package is read straight from its XML, so text users see is kept wherever it sits.

python-docx exposes body paragraphs and tables, but not content controls (``w:sdt``), text
boxes (``w:txbxContent``), footnotes or endnotes, and it raises on Strict-namespace files and
on packages with a missing part (two of our real test files). So this reader walks the XML
itself, matching elements by local name (Transitional and Strict namespaces alike), and
resolves heading levels, list numbering and table headers from the styles and numbering parts.

The parts: ``_package`` opens the archive (size limits, parts found through relationships),
``_xml`` reads elements by local name and a paragraph's visible text, ``_numbering`` holds the
styles and list-numbering labels, ``_walker`` walks the body, tables, notes, charts, headers and
footers into blocks.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from documents.readers._types import Page, UnreadableDocument
from documents.readers.docx._package import (
    DAMAGED,
    EMPTY,
    MAX_COMPRESSION_RATIO,
    MAX_UNCOMPRESSED_BYTES,
    NOT_A_DOCX,
    ZIP_BOMB,
    Package,
    check_sizes,
)
from documents.readers.docx._walker import Reader

__all__ = [
    "DAMAGED",
    "EMPTY",
    "MAX_COMPRESSION_RATIO",
    "MAX_UNCOMPRESSED_BYTES",
    "NOT_A_DOCX",
    "ZIP_BOMB",
    "iter_pages",
    "read",
]


def read(path: Path) -> list[Page]:
    """Read a DOCX as one unpaged page: body, then footnotes, endnotes, headers and footers.

    Raises ``UnreadableDocument`` for a file that is not a DOCX, is damaged, a zip bomb, or
    has no text.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            check_sizes(archive)
            blocks = Reader(Package(archive)).read()
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
