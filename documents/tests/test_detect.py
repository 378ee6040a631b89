"""Type detection from content, and file-name sanitising."""

# Russian text is what these tests are about: Cyrillic letters that look Latin are intended
# (RUF100: the project may already ignore RUF001 globally).
# ruff: noqa: RUF001, RUF100

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from documents.detect import (
    MAX_NAME_BYTES,
    detect_type,
    sanitize_filename,
    stored_filename,
    title_from_filename,
)
from documents.readers import UnreadableDocument

from .conftest import make_docx, make_pdf, para


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _zip(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return path


def test_pdf_is_recognised_by_its_magic_whatever_the_name(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "report.txt", [["hi"]])
    assert detect_type(path, "report.txt") == "pdf"


def test_docx_is_a_zip_holding_a_word_document(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "upload.bin", para("hi"))
    assert detect_type(path, "upload.bin") == "docx"


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("xl/workbook.xml", "Excel spreadsheet"),
        ("ppt/presentation.xml", "PowerPoint"),
        ("content.xml", "OpenDocument"),
        ("readme.txt", "zip archive, not a Word document"),
    ],
)
def test_other_zip_formats_are_rejected_by_name(tmp_path: Path, member: str, expected: str) -> None:
    with pytest.raises(UnreadableDocument, match=expected):
        detect_type(_zip(tmp_path / "a.docx", [member]), "a.docx")


def test_truncated_zip_is_a_damaged_word_document(tmp_path: Path) -> None:
    good = make_docx(tmp_path / "a.docx", para("hi"))
    cut = _write(tmp_path / "b.docx", good.read_bytes()[:200])
    with pytest.raises(UnreadableDocument, match="damaged or incomplete"):
        detect_type(cut, "b.docx")


def test_ole2_container_with_encryption_info_is_a_password_protected_office_file(
    tmp_path: Path,
) -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100 + "EncryptionInfo".encode("utf-16-le")
    with pytest.raises(UnreadableDocument, match="password-protected"):
        detect_type(_write(tmp_path / "a.docx", data), "a.docx")


def test_legacy_doc_file_asks_to_save_as_docx(tmp_path: Path) -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100
    with pytest.raises(UnreadableDocument, match=r"save it as \.docx"):
        detect_type(_write(tmp_path / "a.doc", data), "a.doc")


def test_images_are_rejected_by_their_signature(tmp_path: Path) -> None:
    with pytest.raises(UnreadableDocument, match="PNG image"):
        detect_type(_write(tmp_path / "a.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 50), "a.pdf")


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UnreadableDocument, match="empty"):
        detect_type(_write(tmp_path / "a.txt", b""), "a.txt")


@pytest.mark.parametrize(
    "content",
    [
        b"<!DOCTYPE html><html><body><p>x</p></body></html>",
        b"\xef\xbb\xbf  <html lang='ru'><p>x</p></html>",
        "<!doctype html><title>Привет</title>".encode("utf-16"),
    ],
)
def test_html_is_sniffed_from_the_content(tmp_path: Path, content: bytes) -> None:
    assert detect_type(_write(tmp_path / "page.txt", content), "page.txt") == "html"


def test_html_fragment_counts_as_html_only_with_an_html_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "frag", b"<p>Hello</p><p>there</p>")
    assert detect_type(path, "frag.html") == "html"
    assert detect_type(path, "frag.txt") == "txt"


def test_markdown_is_told_from_text_by_extension_only(tmp_path: Path) -> None:
    path = _write(tmp_path / "a", "# Заголовок\n\nТекст".encode())
    assert detect_type(path, "notes.md") == "md"
    assert detect_type(path, "notes.txt") == "txt"
    assert detect_type(path, "notes") == "txt"


def test_cyrillic_text_in_a_single_byte_code_page_is_text(tmp_path: Path) -> None:
    path = _write(tmp_path / "a", "Привет, как дела? Всё хорошо.".encode("koi8_r"))
    assert detect_type(path, "a.txt") == "txt"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Отчёт 2024.docx", "Отчёт 2024.docx"),
        ("my file<>|?.pdf", "my file.pdf"),
        ("con\x00trol\n.txt", "control.txt"),
        ("...", "document"),
        ("", "document"),
        (".hidden.md", "hidden.md"),
    ],
)
def test_sanitize_filename_strips_paths_and_unsafe_characters(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


def test_sanitize_filename_shortens_long_names_and_keeps_the_extension() -> None:
    result = sanitize_filename("a" * 500 + ".docx", max_bytes=100)
    assert len(result) <= 100 and result.endswith(".docx")


def test_a_long_cyrillic_name_is_bounded_in_bytes_without_splitting_a_letter() -> None:
    name = ("Отчёт о проделанной работе " * 10)[:240] + ".docx"
    result = sanitize_filename(name)
    assert len(result.encode()) <= MAX_NAME_BYTES and result.endswith(".docx")
    assert name.startswith(result.removesuffix(".docx"))  # a prefix, no broken character


def test_the_stored_name_takes_the_extension_of_the_detected_type() -> None:
    assert stored_filename("report.html", "pdf") == "report.pdf"
    assert stored_filename("notes", "txt") == "notes.txt"
    long = stored_filename("ж" * 300 + ".html", "pdf")
    assert long.endswith(".pdf") and len(long.encode()) <= MAX_NAME_BYTES


def test_a_long_title_is_cut_at_a_word_boundary_with_an_ellipsis() -> None:
    words = ("Отчёт о проделанной работе за квартал " * 10).split()
    title = title_from_filename(" ".join(words) + ".pdf", max_chars=60)
    assert len(title) <= 60 and title.endswith("…")
    assert title[:-1].split() == words[: len(title[:-1].split())]
    assert title_from_filename("Short name.pdf") == "Short name"
