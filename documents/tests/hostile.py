"""Hostile files, made by the tests that need them (no binary fixtures): small uploads built to
keep a reader busy or to make it allocate far more memory than a document needs."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from pathlib import Path
from zipfile import ZIP_DEFLATED, ZipFile

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _pdf(content: bytes, *, flate: bool) -> bytes:
    """A one-page PDF (Helvetica) whose page content stream is ``content``, stored compressed
    as it is when ``flate``."""
    stream_dict = b"<< /Length %d%s >>" % (len(content), b" /Filter /FlateDecode" if flate else b"")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
        stream_dict + b"\nstream\n" + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def slow_pdf(pairs: int = 4_000_000) -> bytes:
    """A one-page PDF of ~20 KB whose content stream holds ``pairs`` "q Q" operator pairs (save
    and restore the graphics state: 16 MB of content by default) before one word. pdfminer
    interprets every operator in Python, with flat memory: 250,000 pairs took 19 s on the
    development machine (two busy cores), so the default keeps it busy for minutes."""
    compressor = zlib.compressobj(9)
    block = b"q Q " * 250_000
    parts = [compressor.compress(block) for _ in range(max(1, pairs // 250_000))]
    parts.append(compressor.compress(b"BT /F1 12 Tf 72 700 Td (slow) Tj ET"))
    parts.append(compressor.flush())
    return _pdf(b"".join(parts), flate=True)


def flate_bomb_pdf(inflated_mb: int = 400) -> bytes:
    """A PDF of ~``inflated_mb`` KB whose content stream inflates to ``inflated_mb`` MB of
    spaces (valid content: whitespace), then shows one word. pdfminer inflates a stream whole."""
    compressor = zlib.compressobj(9)
    block = b" " * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(inflated_mb)]
    parts.append(compressor.compress(b"BT /F1 12 Tf 72 700 Td (bomb) Tj ET"))
    parts.append(compressor.flush())
    return _pdf(b"".join(parts), flate=True)


def _paragraphs(count: int) -> Iterable[str]:
    for i in range(count):
        yield f"<w:p><w:r><w:t>Clause {i} of {i * 7919 % 10007}</w:t></w:r></w:p>"


def oversized_docx(path: Path, paragraphs: int = 400_000) -> Path:
    """A DOCX of ~2 MB whose document.xml inflates to ~21 MB of small paragraphs (400,000 by
    default). It passes the zip-bomb guard (under 200 MB, compressed about 10:1), but the XML
    tree of that many elements needs several hundred MB (a million paragraphs, 5.6 MB zipped,
    took 815 MB and 78 s)."""
    with (
        ZipFile(path, "w", ZIP_DEFLATED) as archive,
        archive.open("word/document.xml", "w", force_zip64=True) as part,
    ):
        part.write(
            f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}"><w:body>'.encode()
        )
        batch: list[str] = []
        for paragraph in _paragraphs(paragraphs):
            batch.append(paragraph)
            if len(batch) == 10_000:
                part.write("".join(batch).encode())
                batch = []
        part.write(("".join(batch) + "</w:body></w:document>").encode())
    return path
