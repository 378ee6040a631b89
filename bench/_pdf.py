"""A tiny writer of valid text PDFs (Helvetica, one text object per page) for benchmarks."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = [
    "contract",
    "supplier",
    "delivery",
    "warranty",
    "invoice",
    "payment",
    "clause",
    "term",
    "party",
    "obligation",
    "agreement",
    "notice",
    "period",
    "liability",
    "damages",
    "force",
    "majeure",
    "dispute",
    "arbitration",
    "law",
    "schedule",
    "annex",
    "price",
    "quantity",
    "quality",
    "inspection",
    "acceptance",
    "transfer",
    "risk",
    "title",
]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def page_lines(rng: random.Random, words_per_page: int, number: int) -> list[str]:
    """Paragraph-shaped lines: ~12 words a line, a blank line every few lines."""
    lines: list[str] = [f"Section {number}. Terms of supply"]
    words = [rng.choice(WORDS) for _ in range(words_per_page)]
    for start in range(0, len(words), 12):
        lines.append(" ".join(words[start : start + 12]) + ("." if start % 60 == 48 else ""))
        if start % 60 == 48:
            lines.append("")
    return lines


def write_pdf(path: Path, pages: int, *, words_per_page: int = 250, seed: int = 7) -> Path:
    """Write a ``pages``-page text PDF to ``path``, streaming, and return the path."""
    rng = random.Random(seed)
    offsets: list[int] = []
    with path.open("wb") as out:
        written = out.write(b"%PDF-1.4\n")

        def obj(number: int, body: bytes) -> None:
            nonlocal written
            offsets.append(written)
            written += out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

        kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(pages))
        obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
        obj(2, f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
        obj(3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        for i in range(pages):
            ops = ["BT /F1 10 Tf 50 780 Td 13 TL"]
            ops += [f"({_escape(line)}) Tj T*" for line in page_lines(rng, words_per_page, i + 1)]
            ops.append("ET")
            content = "\n".join(ops).encode("latin-1")
            obj(
                4 + 2 * i,
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode(),
            )
            obj(5 + 2 * i, b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        xref = written
        out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
        for offset in offsets:
            out.write(b"%010d 00000 n \n" % offset)
        out.write(
            b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(offsets) + 1, xref)
        )
    return path
