"""The archive: size limits checked before parsing, parts found through relationships."""

from __future__ import annotations

import posixpath
import zipfile

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from documents.readers._types import UnreadableDocument, gettext_noop
from documents.readers.docx._xml import attr

#: A DOCX whose parts unpack to more than this is refused before any parsing (zip bombs).
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
#: A part larger than ``_RATIO_FLOOR`` that compressed better than this is a zip bomb.
MAX_COMPRESSION_RATIO = 100
_RATIO_FLOOR = 10 * 1024 * 1024

NOT_A_DOCX = gettext_noop(
    "This file is not a Word document (.docx); save it as .docx and upload it again."
)
DAMAGED = gettext_noop(
    "This Word document is damaged or incomplete; open it in Word, save it, and upload again."
)
ZIP_BOMB = gettext_noop(
    "This Word document unpacks to far more data than a document holds (over 200 MB or an "
    "extreme compression ratio), so it was not opened; it may be a zip bomb."
)
EMPTY = gettext_noop("This Word document contains no text.")

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)


def check_sizes(archive: zipfile.ZipFile) -> None:
    total = 0
    for info in archive.infolist():
        total += info.file_size
        ratio = info.file_size / max(1, info.compress_size)
        if total > MAX_UNCOMPRESSED_BYTES or (
            info.file_size > _RATIO_FLOOR and ratio > MAX_COMPRESSION_RATIO
        ):
            raise UnreadableDocument(ZIP_BOMB)


class Package:
    """The parts of the archive, found through relationships rather than fixed names."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.names = set(archive.namelist())
        main = self._targets("", "_rels/.rels", "officeDocument") or ["word/document.xml"]
        self.main = main[0]
        if self.main not in self.names:
            raise UnreadableDocument(NOT_A_DOCX)
        folder = posixpath.dirname(self.main)
        self.rels = posixpath.join(folder, "_rels", posixpath.basename(self.main) + ".rels")

    def xml(self, name: str) -> etree._Element | None:
        if name not in self.names:
            return None
        with self.archive.open(name) as fh:
            data = fh.read(MAX_UNCOMPRESSED_BYTES + 1)
        if len(data) > MAX_UNCOMPRESSED_BYTES:
            raise UnreadableDocument(ZIP_BOMB)
        return etree.fromstring(data, PARSER)

    def related(self, kind: str) -> list[etree._Element]:
        """Parsed parts that the main document relates to with a type ending in ``kind``."""
        folder = posixpath.dirname(self.main)
        roots = (self.xml(name) for name in self._targets(folder, self.rels, kind))
        return [root for root in roots if root is not None]

    def _targets(self, folder: str, rels_name: str, kind: str) -> list[str]:
        rels = self.xml(rels_name)
        if rels is None:
            return []
        found = []
        for rel in rels:
            if attr(rel, "Type") is None or attr(rel, "TargetMode") == "External":
                continue
            if str(attr(rel, "Type")).rsplit("/", 1)[-1] == kind:
                target = str(attr(rel, "Target"))
                path = (
                    target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
                )
                found.append(posixpath.normpath(path))
        return found
