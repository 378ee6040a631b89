"""Plain text: the encoding is detected automatically; paragraphs are separated by blank lines."""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Iterator
from pathlib import Path

from charset_normalizer import from_bytes

from documents.readers._structure import StructureBuilder
from documents.readers._types import Page, UnreadableDocument, gettext_noop

#: Files larger than this are refused: plain text of this size is almost certainly not prose.
MAX_TEXT_BYTES = 64 * 1024 * 1024

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Single-byte Cyrillic code pages that charset detectors confuse with one another.
_CYRILLIC_CANDIDATES = ("cp1251", "koi8_r", "cp866", "mac_cyrillic", "cp855")

# Relative frequency (%) of lowercase Russian letters in ordinary prose.
_RUSSIAN_FREQ = dict(
    zip(
        "оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё",
        (
            10.97,
            8.45,
            8.01,
            7.35,
            6.70,
            6.26,
            5.47,
            4.73,
            4.54,
            4.40,
            3.49,
            3.21,
            2.98,
            2.81,
            2.62,
            2.01,
            1.90,
            1.74,
            1.70,
            1.65,
            1.59,
            1.44,
            1.21,
            0.97,
            0.94,
            0.73,
            0.64,
            0.48,
            0.36,
            0.32,
            0.26,
            0.04,
            0.04,
        ),
        strict=True,
    )
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def read(path: Path) -> list[Page]:
    """Read a text file as one unpaged page of paragraphs.

    Raises ``UnreadableDocument`` when the file is empty, too large or not text.
    """
    return [_page_from_text(decode_bytes(_read_bytes(path)))]


def iter_pages(path: Path) -> Iterator[Page]:
    """Same as ``read``; a text file is a single page."""
    yield from read(path)


def _read_bytes(path: Path) -> bytes:
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise UnreadableDocument(
            gettext_noop("This text file is larger than 64 MB; split it into parts.")
        )
    return path.read_bytes()


def _page_from_text(text: str) -> Page:
    builder = StructureBuilder()
    for para in _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n").replace("\r", "\n")):
        builder.add("paragraph", para, keep_lines=True)
    page = Page.from_blocks(None, builder.blocks)
    if not page.blocks:
        raise UnreadableDocument(gettext_noop("The file contains no text."))
    return page


def decode_bytes(data: bytes) -> str:
    """Decode text whose encoding is unknown: BOM, then UTF-8, UTF-16 without BOM, then the
    single-byte code page that reads most like Russian, then charset-normalizer's guess.

    Raises ``UnreadableDocument`` for an empty file or binary data.
    """
    if not data.strip(b" \t\r\n\x00"):
        raise UnreadableDocument(gettext_noop("The file is empty."))
    encoding = detect_encoding(data)
    text = data.decode(encoding, errors="replace").lstrip("\ufeff")
    if not text.strip():
        raise UnreadableDocument(gettext_noop("The file contains no text."))
    if _control_share(text) > 0.05:
        raise UnreadableDocument(
            gettext_noop(
                "This file is not text (it contains binary data); upload a PDF, DOCX, TXT, "
                "Markdown or HTML file."
            )
        )
    return text


def detect_encoding(data: bytes) -> str:
    """Name of the codec that decodes ``data`` (see ``decode_bytes`` for the order tried)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    utf16 = _utf16_without_bom(data)
    if utf16:
        return utf16
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    cyrillic = _best_cyrillic(data)
    if cyrillic:
        return cyrillic
    best = from_bytes(data[:200_000]).best()
    return best.encoding if best is not None else "cp1252"


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text shows one byte value dominating every other position (0x00 for Latin,
    0x04 for Cyrillic)."""
    sample = data[:8192]
    if len(sample) < 4:
        return None
    sample = sample[: len(sample) // 2 * 2]
    for name, high in (("utf-16-le", sample[1::2]), ("utf-16-be", sample[0::2])):
        top = max(set(high), key=high.count)
        if top in (0x00, 0x04) and high.count(top) / len(high) > 0.6:
            try:
                text = data[: len(data) // 2 * 2].decode(name)
            except UnicodeDecodeError:
                continue
            if _control_share(text) < 0.05:
                return name
    return None


def _control_share(text: str) -> float:
    sample = text[:20_000]
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r\f") or ch == "\ufffd")
    return bad / max(1, len(sample))


def _best_cyrillic(data: bytes) -> str | None:
    """The Cyrillic code page under which the high bytes read most like Russian prose, or
    ``None`` when no candidate reads like Russian (then the text is probably Western)."""
    sample = data[:100_000]
    high = bytes(b for b in sample if b >= 0x80)
    ascii_letters = sum(1 for b in sample if 0x41 <= (b | 0x20) <= 0x5A)
    # In Russian text whole words are high bytes; Western text has an accent here and there.
    if len(high) < 0.3 * (len(high) + ascii_letters):
        return None
    score, encoding = max(
        (_russian_score(high.decode(enc, "replace")), enc) for enc in _CYRILLIC_CANDIDATES
    )
    return encoding if score > -4.0 else None


def _russian_score(chars: str) -> float:
    """Mean log-likelihood per character of ``chars`` being Russian letters: common lowercase
    letters score high, capitals lower (they are rarer in prose), anything else very low."""
    total = 0.0
    for ch in chars:
        low = ch.lower()
        freq = _RUSSIAN_FREQ.get(low)
        if freq is None:
            total += -9.0
        elif ch == low:
            total += math.log(freq / 100)
        else:
            total += math.log(freq / 100) - 2.5
    return total / len(chars)
