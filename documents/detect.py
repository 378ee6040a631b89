"""What a file is, judged by its content rather than its name; and safe file names.

Ground floor: no Django. Returns ``FileType`` values (pdf, docx, txt, md, html) as strings.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from pathlib import Path, PurePath
from typing import Final, Literal

from documents.readers import UnreadableDocument
from documents.readers._types import gettext_noop
from documents.readers.docx import DAMAGED as DOCX_DAMAGED
from documents.readers.txt import decode_bytes

DetectedType = Literal["pdf", "docx", "txt", "md", "html"]

_HEAD_BYTES: Final = 16 * 1024
_MARKDOWN_SUFFIXES: Final = {".md", ".markdown", ".mdown", ".mkd"}
_HTML_SUFFIXES: Final = {".html", ".htm", ".xhtml"}
_HTML_START = re.compile(
    r"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S
)
_HTML_TAGS = re.compile(r"<(?:html|head|body|title|meta|p|div|h[1-6]|table|ul|ol|br)\b[^>]*>", re.I)
_OLE2: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

#: Signatures of common formats we do not read, with the user-facing name.
_FOREIGN: Final = (
    (b"\x89PNG\r\n\x1a\n", gettext_noop("a PNG image")),
    (b"\xff\xd8\xff", gettext_noop("a JPEG image")),
    (b"GIF87a", gettext_noop("a GIF image")),
    (b"GIF89a", gettext_noop("a GIF image")),
    (b"II*\x00", gettext_noop("a TIFF image")),
    (b"MM\x00*", gettext_noop("a TIFF image")),
    (b"{\\rtf", gettext_noop("an RTF document")),
    (b"Rar!", gettext_noop("a RAR archive")),
    (b"7z\xbc\xaf\x27\x1c", gettext_noop("a 7-Zip archive")),
    (b"\x1f\x8b", gettext_noop("a gzip archive")),
    (b"\x7fELF", gettext_noop("a program")),
    (b"MZ", gettext_noop("a Windows program")),
)

_ZIP_KINDS: Final = (
    ("xl/workbook.xml", gettext_noop("an Excel spreadsheet (.xlsx)")),
    ("ppt/presentation.xml", gettext_noop("a PowerPoint presentation (.pptx)")),
    ("content.xml", gettext_noop("an OpenDocument file (.odt/.ods)")),
)

SUPPORTED = gettext_noop("Upload a PDF, DOCX, TXT, Markdown or HTML file.")

_CANNOT_READ = gettext_noop("This file is %(name)s, which we cannot read. %(supported)s")


def detect_type(path: Path, original_name: str = "") -> DetectedType:
    """The type of the file at ``path``, from its bytes. ``original_name`` only decides
    between Markdown and plain text (they look alike) and helps recognise HTML fragments.

    Raises ``UnreadableDocument`` with a reason for empty files, other formats (images,
    spreadsheets, OpenDocument, legacy .doc), encrypted Office files and damaged archives.
    """
    with Path(path).open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
    if not head.strip(b" \t\r\n\x00"):
        raise UnreadableDocument(gettext_noop("The file is empty."))
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_type(path)
    if head.startswith(_OLE2):
        raise UnreadableDocument(_ole2_reason(path))
    for magic, name in _FOREIGN:
        if head.startswith(magic):
            raise UnreadableDocument(_CANNOT_READ % {"name": name, "supported": SUPPORTED})
    return _text_type(head, PurePath(original_name or Path(path).name).suffix.lower())


def _zip_type(path: Path) -> DetectedType:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableDocument(DOCX_DAMAGED) from exc
    if "word/document.xml" in names or any(n.endswith("/document.xml") for n in names):
        return "docx"
    for marker, name in _ZIP_KINDS:
        if marker in names:
            raise UnreadableDocument(_CANNOT_READ % {"name": name, "supported": SUPPORTED})
    raise UnreadableDocument(
        gettext_noop("This file is a zip archive, not a Word document. %(supported)s")
        % {"supported": SUPPORTED}
    )


def _ole2_reason(path: Path) -> str:
    data = Path(path).read_bytes()[: 4 * 1024 * 1024]
    if "EncryptionInfo".encode("utf-16-le") in data:
        return gettext_noop(
            "This Office document is password-protected; remove the password (File > Info > "
            "Protect Document) and upload it again."
        )
    return gettext_noop(
        "This is an old-format Office file (.doc/.xls); open it and save it as .docx, then "
        "upload it again."
    )


def _text_type(head: bytes, suffix: str) -> DetectedType:
    text = decode_bytes(head if len(head) < _HEAD_BYTES else _trim_partial(head))
    if _HTML_START.match(text) or (suffix in _HTML_SUFFIXES and _HTML_TAGS.search(text)):
        return "html"
    if len(_HTML_TAGS.findall(text[:4096])) >= 3 and "<body" in text.lower():
        return "html"
    return "md" if suffix in _MARKDOWN_SUFFIXES else "txt"


def _trim_partial(head: bytes) -> bytes:
    """Cut the sample after its last line break so that a multi-byte character cut at the
    edge does not look like a decoding error."""
    cut = head.rfind(b"\n")
    return head[: cut + 1] if cut > len(head) // 2 else head


_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+", re.UNICODE)

#: A stored name's bound in UTF-8 bytes (file systems allow 255 bytes per name, not characters;
#: the rest is room for the storage's de-duplication suffix).
MAX_NAME_BYTES: Final = 200
#: A document title's bound in characters (taken from the file name when none is given).
MAX_TITLE_CHARS: Final = 200

_EXTENSIONS: Final[dict[str, str]] = {
    "pdf": "pdf",
    "docx": "docx",
    "txt": "txt",
    "md": "md",
    "html": "html",
}


def sanitize_filename(name: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A file name safe to store and show: no directories, no control or shell-special
    characters, no leading dots, at most ``max_bytes`` bytes in UTF-8 with the extension kept
    and no character split. Letters of any script (e.g. Cyrillic) are kept. Never returns an
    empty string."""
    stem, suffix = _split(_clean(name))
    suffix = suffix[:16]
    stem = _cut_bytes(stem, max(1, max_bytes - len(suffix.encode()) - 1)).rstrip(" ._")
    name = f"{stem}.{suffix}" if suffix and stem else stem or suffix
    return name or "document"


def stored_filename(name: str, file_type: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """The name to store a file of detected ``file_type`` under: ``name``'s stem with the
    extension of that type (``report.html`` detected as a PDF is stored as ``report.pdf``), at
    most ``max_bytes`` bytes in UTF-8."""
    stem, _suffix = _split(sanitize_filename(name, max_bytes=max_bytes))
    return sanitize_filename(f"{stem or 'document'}.{_EXTENSIONS[file_type]}", max_bytes=max_bytes)


def title_from_filename(name: str, *, max_chars: int = MAX_TITLE_CHARS) -> str:
    """A title from a file name: its stem, cut at a word boundary with an ellipsis when longer
    than ``max_chars`` characters (a single over-long word is cut where it must be)."""
    text = _split(_clean(name))[0] or "document"
    if len(text) <= max_chars:
        return text
    head = text[: max_chars - 1]
    if text[max_chars - 1] != " " and " " in head:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip(" .,;:-_") + "…"


def _clean(name: str) -> str:
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" ._")
    return re.sub(r"_{2,}", "_", re.sub(r"\s+", " ", name))


def _split(name: str) -> tuple[str, str]:
    stem, dot, suffix = name.rpartition(".")
    return (stem, suffix) if dot else (name, "")


def _cut_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    return text.encode()[:limit].decode("utf-8", "ignore")
