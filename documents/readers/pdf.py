"""PDF with pdfminer.six, one page at a time, physical 1-based page numbers kept."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import LAParams, LTChar, LTFigure, LTPage, LTTextContainer
from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser
from pdfminer.pdftypes import resolve1
from pdfminer.psexceptions import PSEOF

from documents.readers._structure import StructureBuilder, clean_inline
from documents.readers._types import Page, UnreadableDocument, gettext_noop

logger = logging.getLogger(__name__)

#: Layout analysis tuned for reading order: ``boxes_flow`` 0.5 weighs horizontal position
#: enough that a column is read to its end before the next one starts; vertical and rotated
#: text is detected; text inside figures (rotated pages, diagrams) is analysed too.
LAPARAMS = LAParams(
    line_overlap=0.5,
    char_margin=2.0,
    line_margin=0.5,
    word_margin=0.1,
    boxes_flow=0.5,
    detect_vertical=True,
    all_texts=True,
)

#: pdfminer caches every parsed object of the document; clear it past this many objects so a
#: 1,000-page PDF never sits in memory whole.
_OBJECT_CACHE_LIMIT = 2_000

#: A text box whose characters are this much larger than the page's body text may be a heading.
_HEADING_RATIO = 1.2
_BULLETS = "•◦▪▫‣⁃–—-*·"
_DIGITS = re.compile(r"\d+")
_NUMBERED = re.compile(r"^\d+(\.\d+)*\.?$")
_CID = re.compile(r"\(cid:\d+\)")
_HYPHEN_BREAK = re.compile(r"(\w)[-\u00ad]\n(?=[a-z\u0430-\u044f\u0451])")
_LIGATURES = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
)

PASSWORD_PROTECTED = gettext_noop(
    "This PDF is password-protected; remove the password and upload it again."
)
NO_TEXT_LAYER = gettext_noop(
    "This PDF has no text layer (it looks scanned or made of images); run OCR on it first "
    "and upload the result."
)
CID_GARBAGE = gettext_noop(
    "This PDF's fonts do not map to readable characters (only (cid:NN) codes come out); "
    "export it again as PDF with embedded Unicode fonts, or run OCR on it."
)
DAMAGED = gettext_noop(
    "This PDF is damaged or incomplete (perhaps the upload was cut short); upload it again."
)
NO_PAGES = gettext_noop("This PDF has no pages; it may be damaged or incomplete. Upload it again.")


def read(path: Path) -> list[Page]:
    """All pages with text, in order. Raises ``UnreadableDocument`` (see ``iter_pages``)."""
    return list(iter_pages(path))


def iter_pages(path: Path, *, max_pages: int | None = None) -> Iterator[Page]:
    """Yield the pages that carry text, one at a time (memory stays flat for long files).

    Pages without text are skipped, so numbers may have gaps. Raises ``UnreadableDocument``
    for encrypted, damaged, empty, image-only and unreadable-font PDFs, and when the document
    has more than ``max_pages`` pages; the no-text reasons are raised after the last page,
    when it is known that no page had text.
    """
    with path.open("rb") as fh:
        document = _open(fh)
        yielded = cid_pages = 0
        structure = _Structure()
        number = 0
        for number, layout in enumerate(_layouts(document), start=1):
            if max_pages is not None and number > max_pages:
                raise UnreadableDocument(
                    gettext_noop(
                        "This PDF has more than %(pages)s pages, the most we accept; split it."
                    )
                    % {"pages": max_pages}
                )
            page, garbled = _page(number, layout, structure)
            cid_pages += garbled
            if page.blocks:
                yielded += 1
                yield page
        if number == 0:
            raise UnreadableDocument(NO_PAGES)
        if yielded == 0:
            raise UnreadableDocument(CID_GARBAGE if cid_pages else NO_TEXT_LAYER)


def page_count(path: Path) -> int | None:
    """The page count the PDF declares (cheap: no page is parsed), or ``None`` if unknown."""
    try:
        with path.open("rb") as fh:
            document = _open(fh)
            count = resolve1(resolve1(document.catalog.get("Pages")).get("Count"))
            return int(count) if isinstance(count, int) else None
    except (UnreadableDocument, AttributeError, TypeError, ValueError):
        return None


def _open(fh: Any) -> PDFDocument:
    try:
        return PDFDocument(PDFParser(fh), password="")
    except (PDFPasswordIncorrect, PDFEncryptionError) as exc:
        raise UnreadableDocument(PASSWORD_PROTECTED) from exc
    except (PSEOF, RecursionError) as exc:
        raise UnreadableDocument(DAMAGED) from exc
    except MemoryError:
        raise  # a limit of the reading process, not damage: the caller says which limit
    except Exception as exc:  # pdfminer raises many kinds on broken files
        logger.info("pdfminer could not open %s: %r", getattr(fh, "name", "?"), exc)
        raise UnreadableDocument(DAMAGED) from exc


def _layouts(document: PDFDocument) -> Iterator[LTPage]:
    resources = PDFResourceManager(caching=True)
    device = PDFPageAggregator(resources, laparams=LAPARAMS)
    interpreter = PDFPageInterpreter(resources, device)
    pages = PDFPage.create_pages(document)
    while True:
        try:
            page = next(pages)
            interpreter.process_page(page)
        except StopIteration:
            return
        except (PDFPasswordIncorrect, PDFEncryptionError) as exc:
            raise UnreadableDocument(PASSWORD_PROTECTED) from exc
        except MemoryError:
            raise
        except Exception as exc:  # a broken page tree or content stream
            logger.info("pdfminer failed on a page: %r", exc)
            raise UnreadableDocument(DAMAGED) from exc
        yield device.get_result()
        _trim_cache(document)


def _trim_cache(document: PDFDocument) -> None:
    cache = getattr(document, "_cached_objs", None)
    if isinstance(cache, dict) and len(cache) > _OBJECT_CACHE_LIMIT:
        cache.clear()


class _Structure:
    """State carried from page to page: the heading stack, and the heading-like lines of
    recent pages (a line that recurs on nearby pages is a running header, not a heading)."""

    def __init__(self) -> None:
        self.builder = StructureBuilder()
        self.recent: dict[str, int] = {}

    def is_running(self, text: str, number: int) -> bool:
        key = _DIGITS.sub("#", text.lower())
        seen = self.recent.get(key)
        self.recent[key] = number
        if len(self.recent) > 500:
            self.recent = {k: n for k, n in self.recent.items() if n >= number - 3}
        return seen is not None and seen != number and number - seen <= 3


def _page(number: int, layout: LTPage, structure: _Structure) -> tuple[Page, bool]:
    """The page's blocks, and whether (cid:NN) codes made up most of its text."""
    builder = structure.builder
    boxes: list[tuple[str, float, int]] = []
    raw_chars = cid_chars = 0
    for raw, size, count in _box_texts(layout):
        raw_chars += len(raw)
        cid_chars += sum(len(m) for m in _CID.findall(raw))
        text = _clean(raw)
        if text:
            boxes.append((text, size, count))
    garbled = raw_chars > 0 and cid_chars / raw_chars > 0.5
    body = _body_size(boxes)
    for text, size, _ in [] if garbled else boxes:
        level = _heading_level(text, size, body)
        if level and not structure.is_running(text, number):
            builder.heading(text, level)
        else:
            builder.add("paragraph", text)
    blocks, builder.blocks = builder.blocks, []
    return Page.from_blocks(number, blocks), garbled


def _body_size(boxes: list[tuple[str, float, int]]) -> float:
    """The font size that most characters of the page are set in."""
    weight: dict[float, int] = {}
    for _, size, count in boxes:
        key = round(size * 2) / 2
        weight[key] = weight.get(key, 0) + count
    return max(weight, key=lambda k: weight[k]) if weight else 0.0


def _heading_level(text: str, size: float, body: float) -> int | None:
    """A short line set clearly larger than the body text is a heading; the ratio of the
    sizes gives its level (1-3). Sentences (ending in . , ;) and bare numbers are not."""
    if body <= 0 or size < body * _HEADING_RATIO or len(text) > 150 or len(text.split()) > 16:
        return None
    if text.endswith((".", ",", ";")) and not _NUMBERED.match(text):
        return None
    if len(text) < 3 or not any(ch.isalpha() for ch in text) or text[0] in _BULLETS:
        return None
    ratio = size / body
    return 1 if ratio >= 1.6 else 2 if ratio >= 1.3 else 3


def _box_texts(container: Any) -> Iterator[tuple[str, float, int]]:
    """(text, mean font size, character count) of each text box in reading order; figures
    are searched for boxes too."""
    for element in container:
        if isinstance(element, LTTextContainer):
            yield (element.get_text(), *_font_size(element))
        elif isinstance(element, LTFigure):
            yield from _box_texts(element)
            loose = [c for c in element if isinstance(c, LTChar)]
            text = "".join(c.get_text() for c in loose)
            if text.strip():
                yield text, sum(c.size for c in loose) / len(loose), len(loose)


def _font_size(element: Any) -> tuple[float, int]:
    sizes = [c.size for c in _chars(element)]
    return (sum(sizes) / len(sizes), len(sizes)) if sizes else (0.0, 0)


def _chars(element: Any) -> Iterator[LTChar]:
    for child in element:
        if isinstance(child, LTChar):
            yield child
        elif isinstance(child, LTTextContainer):
            yield from _chars(child)


def _clean(raw: str) -> str:
    text = _CID.sub("", raw).translate(_LIGATURES)
    text = _HYPHEN_BREAK.sub(r"\1", text)
    return clean_inline(text)
