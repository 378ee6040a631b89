"""Readers turn a stored file into pages of structured text.

Ground floor: no Django, no app imports. Each reader module (``pdf``, ``docx``, ``txt``,
``markdown``, ``html``) exposes ``read(path) -> list[Page]`` and ``iter_pages(path)``, and
raises ``UnreadableDocument(reason)`` with a sentence a user can act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from documents.readers import docx, html, markdown, pdf, txt
from documents.readers._types import Block, BlockKind, Page, UnreadableDocument, gettext_noop

__all__ = [
    "Block",
    "BlockKind",
    "Page",
    "UnreadableDocument",
    "count_pages",
    "iter_document",
    "read_document",
]

_TYPES = ("pdf", "docx", "txt", "md", "html")


def iter_document(path: Path, file_type: str, *, max_pages: int | None = None) -> Iterator[Page]:
    """Yield the pages of ``path`` read as ``file_type`` (a ``FileType`` value: pdf, docx,
    txt, md, html), one at a time for PDFs.

    Raises ``UnreadableDocument`` when the file cannot be read (possibly after some pages
    were yielded) and ``ValueError`` for an unknown ``file_type``. ``max_pages`` limits
    PDFs: a longer one is refused, not cut. ``MemoryError`` is left to the caller: under a
    memory limit (``documents.extraction``) it is the limit that was reached, not a property
    of the file.
    """
    path = Path(path)
    if file_type == "pdf":
        yield from pdf.iter_pages(path, max_pages=max_pages)
        return
    if file_type not in _TYPES:
        raise ValueError(f"unknown file type {file_type!r}")
    reader = {"docx": docx, "txt": txt, "md": markdown, "html": html}[file_type]
    try:
        yield from reader.iter_pages(path)
    except OSError as exc:
        raise UnreadableDocument(
            gettext_noop("The stored file could not be opened; upload it again.")
        ) from exc


def read_document(path: Path, file_type: str, *, max_pages: int | None = None) -> list[Page]:
    """All pages of ``path`` (see ``iter_document``); for small files and tests."""
    return list(iter_document(path, file_type, max_pages=max_pages))


def count_pages(path: Path, file_type: str) -> int | None:
    """The declared page count of a PDF (for progress), ``None`` for unpaged formats or when
    the PDF does not say."""
    return pdf.page_count(Path(path)) if file_type == "pdf" else None
