"""Builders for small synthetic PDF and DOCX files used by the reader and chunking tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TESTDATA_DOCS = SHARED / "testdata" / "docs"


def _escape_pdf(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(
    path: Path, pages: list[list[str | tuple[str, int]] | None], *, cid_font: bool = False
) -> Path:
    """Write a valid PDF: each page is a list of text lines (a line may be ``(text, font
    size)``; the default size is 12), or ``None`` for a page without any text (as a scanned
    page looks to a text extractor). ``cid_font`` uses an Identity-H
    font without a ToUnicode map, which pdfminer can only render as ``(cid:NN)``."""
    objects: list[bytes] = []
    font = (
        b"<< /Type /Font /Subtype /Type0 /BaseFont /Foo /Encoding /Identity-H "
        b"/DescendantFonts [<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Foo "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
        b"/DW 500 >>] >>"
        if cid_font
        else b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    )
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(font)
    for i, lines in enumerate(pages):
        content = b""
        if lines:
            ops = ["BT 72 750 Td"]
            for line in lines:
                text, size = (line, 12) if isinstance(line, str) else line
                ops.append(f"/F1 {size} Tf 0 -{size * 2} Td")
                if cid_font:
                    ops.append("<" + "".join(f"{ord(c):04x}" for c in text) + "> Tj")
                else:
                    ops.append(f"({_escape_pdf(text)}) Tj")
            ops.append("ET")
            content = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
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
    path.write_bytes(bytes(out))
    return path


STYLES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="{W_NS}">
  <w:style w:type="paragraph" w:styleId="Normal"><w:name w:val="Normal"/></w:style>
  <w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/>
    <w:basedOn w:val="Normal"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
  <w:style w:type="paragraph" w:styleId="2"><w:name w:val="heading 2"/>
    <w:basedOn w:val="Normal"/></w:style>
  <w:style w:type="paragraph" w:styleId="Caption"><w:name w:val="caption"/></w:style>
</w:styles>"""

NUMBERING = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:numbering xmlns:w="{W_NS}">
  <w:abstractNum w:abstractNumId="0">
    <w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/>
      <w:lvlText w:val="%1."/></w:lvl>
    <w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="lowerLetter"/>
      <w:lvlText w:val="%1.%2)"/></w:lvl>
  </w:abstractNum>
  <w:abstractNum w:abstractNumId="1">
    <w:lvl w:ilvl="0"><w:numFmt w:val="bullet"/><w:lvlText w:val="o"/></w:lvl>
  </w:abstractNum>
  <w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>
  <w:num w:numId="2"><w:abstractNumId w:val="1"/></w:num>
</w:numbering>"""


def make_docx(
    path: Path,
    body: str,
    *,
    parts: dict[str, tuple[str, str]] | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a DOCX whose body is ``body`` (WordprocessingML, ``w:`` and ``r:`` prefixes).
    ``parts`` maps a part name under word/ to (relationship type suffix, XML); styles and
    numbering are included by default."""
    all_parts = {"styles.xml": ("styles", STYLES), "numbering.xml": ("numbering", NUMBERING)}
    all_parts.update(parts or {})
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{REL}/{kind}" Target="{name}"/>'
        for i, (name, (kind, _)) in enumerate(all_parts.items(), start=1)
    )
    document = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}" '
        f'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
        f'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
        f'xmlns:v="urn:schemas-microsoft-com:vml"><w:body>{body}</w:body></w:document>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{REL[: -len("officeDocument/2006/relationships")]}'
            f'package/2006/relationships"><Relationship Id="rId1" Type="{DOC_REL}" '
            f'Target="word/document.xml"/></Relationships>',
        )
        archive.writestr("word/document.xml", document)
        archive.writestr(
            "word/_rels/document.xml.rels",
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            f'relationships">{rels}</Relationships>',
        )
        for name, (_, xml) in all_parts.items():
            archive.writestr(f"word/{name}", xml)
        for name, data in (extra_files or {}).items():
            archive.writestr(name, data)
    return path


def para(text: str, *, style: str | None = None, num: tuple[int, int] | None = None) -> str:
    ppr = ""
    if style or num:
        ppr = "<w:pPr>"
        if style:
            ppr += f'<w:pStyle w:val="{style}"/>'
        if num:
            ppr += f'<w:numPr><w:ilvl w:val="{num[1]}"/><w:numId w:val="{num[0]}"/></w:numPr>'
        ppr += "</w:pPr>"
    return f'<w:p>{ppr}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>'


def table(rows: list[list[str]], *, header_rows: int = 0) -> str:
    out = "<w:tbl>"
    for index, row in enumerate(rows):
        trpr = "<w:trPr><w:tblHeader/></w:trPr>" if index < header_rows else ""
        cells = "".join(f"<w:tc>{c if c.startswith('<') else para(c)}</w:tc>" for c in row)
        out += f"<w:tr>{trpr}{cells}</w:tr>"
    return out + "</w:tbl>"


@pytest.fixture
def docs_dir() -> Path:
    if not TESTDATA_DOCS.is_dir():
        pytest.skip(f"shared test data not found at {TESTDATA_DOCS}")
    return TESTDATA_DOCS
