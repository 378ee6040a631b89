"""Every real file in shared/testdata/docs goes through detect -> read -> chunk and ends either
chunked with sensible chunks or rejected with the specific reason we expect for it.

The table below is built from shared/testdata/SOURCES.md section 2 and from what the readers
do with each file; docs/INGESTION.md lists the same outcomes for people.
"""

# Russian text is what these tests are about: Cyrillic letters that look Latin are intended
# (RUF100: the project may already ignore RUF001 globally).
# ruff: noqa: RUF001, RUF100

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from documents.chunking import ChunkDraft, ChunkingOptions, iter_chunks
from documents.detect import detect_type
from documents.readers import UnreadableDocument, iter_document

from .conftest import TESTDATA_DOCS

OPTIONS = ChunkingOptions(split_rule="paragraph", max_tokens=200, overlap_tokens=30)

#: Failure categories and the words a user sees in the reason.
REASONS = {
    "password": "password-protected",
    "no_text_layer": "no text layer",
    "damaged": "damaged or incomplete",
    "empty": "contains no text",
}

RU_DECREE = ("ПРАВИТЕЛЬСТВО РОССИЙСКОЙ ФЕДЕРАЦИИ", "ПОСТАНОВЛЕНИЕ")
RU_CHEKHOV = ("В гимназии он не был в числе первых учеников",)


@dataclass(frozen=True)
class Indexed:
    needles: tuple[str, ...]
    pages: int | None = None  # distinct PDF pages that must carry chunks, when known


@dataclass(frozen=True)
class Failed:
    reason: str  # a key of REASONS


Expectation = Indexed | Failed

EXPECTED: dict[str, Expectation] = {
    # --- PDF ---
    "pdf/derived/tracemonkey_truncated_40pct.pdf": Failed("damaged"),
    "pdf/pdfjs/helloworld-bad.pdf": Indexed(("Hello, world!",)),
    "pdf/pdfjs/tracemonkey.pdf": Indexed(("Trace-based Just-in-Time Type Specialization",), 14),
    "pdf/pdfminer/dmca.pdf": Indexed(("DIGITAL MILLENNIUM COPYRIGHT ACT",), 17),
    "pdf/pdfminer/encryption/aes-128.pdf": Failed("password"),
    "pdf/pdfminer/encryption/aes-256.pdf": Failed("password"),
    "pdf/pdfminer/encryption/base.pdf": Indexed(("Secret!",)),
    "pdf/pdfminer/encryption/rc4-128.pdf": Failed("password"),
    "pdf/pdfminer/encryption/rc4-40.pdf": Failed("password"),
    "pdf/pdfminer/i1040nr.pdf": Indexed(("Instructions for Form 1040NR",), 50),
    "pdf/pdfminer/issue-1113-evil-xobjects.pdf": Indexed(("Hello world",)),
    "pdf/pdfminer/issue-449-vertical.pdf": Indexed(("Vertical",)),
    "pdf/pdfminer/jo.pdf": Indexed(("わたくしといふ現象は",)),
    "pdf/pdfminer/simple1.pdf": Indexed(("Hello", "World")),
    "pdf/pdfminer/zen_of_python_corrupted.pdf": Indexed(("Beautiful is better than ugly",)),
    "pdf/pypdf/Seige_of_Vicksburg_Sample_OCR.pdf": Indexed(("VICKSBURG",), 6),
    # Opens with an empty user password under pdfminer.six (pypdf needed "asdfzxcv").
    "pdf/pypdf/r6-user-password.pdf": Indexed(("pdf encryption test",)),
    "pdf/ru/decree842_vak.pdf": Indexed(RU_DECREE, 36),
    "pdf/ru/dissertation_template.pdf": Indexed(("ДИССЕРТАЦИ", "Введение")),
    "pdf/ru/presentation_beamer.pdf": Indexed(("Название презентации",)),
    "pdf/ru/synopsis.pdf": Indexed(("На правах рукописи",), 5),
    "pdf/sample-files/002-trivial-libre-office-writer.pdf": Indexed(("Lorem ipsum",)),
    "pdf/sample-files/GeoTopo-komprimiert.pdf": Indexed(("Geometrie und Topologie",)),
    "pdf/sample-files/google-doc-document.pdf": Indexed(("Beautiful is better than ugly",)),
    "pdf/sample-files/habibi.pdf": Indexed(("habibi", "حَبيبي")),
    "pdf/sample-files/imagemagick-CCITTFaxDecode.pdf": Failed("no_text_layer"),
    "pdf/sample-files/libreoffice-writer-password.pdf": Failed("password"),
    "pdf/sample-files/multicolumn.pdf": Indexed(("Two-Column Document",), 3),
    "pdf/sample-files/pdflatex-forms.pdf": Indexed(("Submit",)),
    "pdf/sample-files/unreadablemetadata.pdf": Indexed(("Potentiometer",)),
    "pdf/tika/testOCR.pdf": Failed("no_text_layer"),
    "pdf/tika/testPDFTwoTextBoxes.pdf": Indexed(("Left column line 1", "Right column line 1")),
    "pdf/tika/testPDF_incrementalUpdates.pdf": Indexed(("Incremental",)),
    "pdf/tika/testPDF_protected.pdf": Indexed(("RETHINKING THE FINANCIAL NETWORK",), 40),
    "pdf/tika/testPDF_rotated.pdf": Indexed(("Apache Tika is a toolkit",)),
    # --- DOCX ---
    "docx/mammoth/empty.docx": Failed("empty"),
    "docx/mammoth/endnotes.docx": Indexed(("A tachyon walks into a bar.",)),
    "docx/mammoth/external-picture.docx": Failed("empty"),
    "docx/mammoth/footnotes.docx": Indexed(("A tachyon walks into a bar.",)),
    "docx/mammoth/simple-list.docx": Indexed(("• Apple", "• Banana")),
    "docx/mammoth/strict-format.docx": Indexed(("Test",)),
    "docx/mammoth/tables.docx": Indexed(("Top left: Bottom left", "Top right: Bottom right")),
    "docx/mammoth/text-box.docx": Indexed(("Datum plane",)),
    "docx/mammoth/utf8-bom.docx": Indexed(("This XML has a byte order mark.",)),
    "docx/python-docx/blk-paras-and-tables.docx": Indexed(("Lorem ipsum",)),
    "docx/python-docx/comments-rich-para.docx": Indexed(("Some text worthy of note.",)),
    "docx/python-docx/doc-odd-even-hdrs.docx": Indexed(("Odd page header", "Even page header")),
    "docx/python-docx/having-images.docx": Failed("empty"),
    "docx/python-docx/hdr-header-footer.docx": Indexed(("Header for section-1", "Footer")),
    "docx/python-docx/num-having-numbering-part.docx": Indexed(("1. Paragraph having List",)),
    "docx/python-docx/par-hyperlinks.docx": Indexed(("the first one here",)),
    "docx/python-docx/sty-having-no-styles-part.docx": Failed("empty"),
    "docx/python-docx/tbl-cell-access.docx": Indexed(("1: 4",)),
    "docx/python-docx/tbl-having-tables.docx": Failed("empty"),
    "docx/python-docx/test.docx": Indexed(("python-docx was here!",)),
    "docx/ru/gost_2.105-95.docx": Indexed(("МЕЖГОСУДАРСТВЕННЫЙ СТАНДАРТ", "Толщина шайбы")),
    "docx/ru/onlyoffice_new_ru.docx": Failed("empty"),
    "docx/ru/onlyoffice_sample_ru.docx": Indexed(("Добро пожаловать в ONLYOFFICE",)),
    "docx/tika/EmbeddedPDF.docx": Indexed(("Test Document with embedded",)),
    "docx/tika/headerPic.docx": Failed("empty"),
    "docx/tika/testWORD_3imgs.docx": Indexed(("The quick brown fox",)),
    "docx/tika/testWORD_charts.docx": Indexed(("wants a peach", "NUMBER: 5")),
    "docx/tika/testWORD_endnote_table.docx": Indexed(("This is endnote text in a table",)),
    "docx/tika/testWORD_numbered_list.docx": Indexed(("Within cell 1", "ii) Level")),
    "docx/tika/testWORD_protected_passtika.docx": Failed("password"),
    "docx/tika/testWORD_text_box.docx": Indexed(("inside of a text box in the header",)),
    "docx/tika/testWORD_truncated.docx": Failed("damaged"),
    "docx/tika/testWORD_various.docx": Indexed(("Here is a text box",)),
    # --- TXT ---
    "txt/en_utf8_bom.txt": Indexed(("About 2 months ago",)),
    "txt/en_win1252_tika.txt": Indexed(("a “windows” encoding",)),
    "txt/ja_utf8_bom.txt": Indexed(("プロジェクトの概要",)),
    "txt/ru_cp1251.txt": Indexed(RU_CHEKHOV),
    "txt/ru_cp866.txt": Indexed(RU_CHEKHOV),
    "txt/ru_cp866_tika.txt": Indexed(("Однажды, в студеную зимнюю пору",)),
    "txt/ru_ibm855.txt": Indexed(RU_CHEKHOV),
    "txt/ru_koi8-r.txt": Indexed(RU_CHEKHOV),
    "txt/ru_maccyrillic.txt": Indexed(RU_CHEKHOV),
    "txt/ru_moscow_utf8.txt": Indexed(("столица России",)),
    "txt/ru_utf8.txt": Indexed(RU_CHEKHOV),
    "txt/utf16be_bom.srt": Indexed(("About 2 months ago",)),
    "txt/utf16be_nobom.txt": Indexed(("DateTime,Bid,Ask",)),
    "txt/utf16le_bom.srt": Indexed(("About 2 months ago",)),
    "txt/utf16le_nobom.txt": Indexed(("DateTime,Bid,Ask",)),
}

#: Characters that appear when Cyrillic is decoded with the wrong code page.
MOJIBAKE = set("ÐÑÃâ\ufffd") | set("ЂЃѓЉЊЌЋЏђљњќћџ")


def _ingest(path: Path) -> list[ChunkDraft]:
    """What the ingestion pipeline does with a file, up to embedding."""
    file_type = detect_type(path, path.name)
    return list(iter_chunks(iter_document(path, file_type), OPTIONS))


def _files() -> list[str]:
    if not TESTDATA_DOCS.is_dir():
        return []
    return sorted(
        str(p.relative_to(TESTDATA_DOCS)) for p in TESTDATA_DOCS.rglob("*") if p.is_file()
    )


def test_the_expectation_table_covers_every_real_file_and_nothing_else(docs_dir: Path) -> None:
    assert _files() == sorted(EXPECTED)
    assert len(EXPECTED) == 83


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_file_is_chunked_or_rejected_as_expected(docs_dir: Path, name: str) -> None:
    expected = EXPECTED[name]
    path = docs_dir / name
    if isinstance(expected, Failed):
        with pytest.raises(UnreadableDocument) as caught:
            _ingest(path)
        assert REASONS[expected.reason] in caught.value.reason
        return
    chunks = _ingest(path)
    _assert_sensible(name, chunks, expected)


def _assert_sensible(name: str, chunks: list[ChunkDraft], expected: Indexed) -> None:
    assert chunks, "no chunks"
    text = "\n".join(c.text for c in chunks)
    for needle in expected.needles:
        assert needle in text, f"{needle!r} missing"
    assert "(cid:" not in text
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text.strip() == chunk.text and chunk.text
        assert 0 < chunk.token_count <= OPTIONS.max_tokens + 40  # + a repeated table caption
        assert chunk.char_start >= 0 and chunk.char_end > 0
    if name.startswith("pdf/"):
        assert all(isinstance(c.page_start, int) and c.page_start >= 1 for c in chunks)
        assert all(c.page_end is not None and c.page_start is not None for c in chunks)
        assert all(c.page_end >= c.page_start for c in chunks)  # type: ignore[operator]
        if expected.pages is not None:
            assert (
                len({c.page_start for c in chunks} | {c.page_end for c in chunks}) >= expected.pages
            )
    else:
        assert all(c.page_start is None and c.page_end is None for c in chunks)
    if "/ru" in name:
        cyrillic = sum("\u0400" <= ch <= "\u04ff" for ch in text)
        assert cyrillic > 0.3 * sum(ch.isalpha() for ch in text)
        if not name.startswith("pdf/"):  # PDFs may legitimately carry odd glyphs
            assert not MOJIBAKE & set(text)


def test_the_same_russian_paragraph_decodes_identically_from_six_encodings(docs_dir: Path) -> None:
    names = ["ru_cp1251", "ru_koi8-r", "ru_cp866", "ru_maccyrillic", "ru_ibm855"]
    texts = {_ingest(docs_dir / f"txt/{n}.txt")[0].text for n in names}
    assert len(texts) == 1
    assert next(iter(texts)).startswith("В гимназии он не был в числе первых учеников")


def test_multicolumn_pdf_reads_the_left_column_before_the_right(docs_dir: Path) -> None:
    chunks = _ingest(docs_dir / "pdf/tika/testPDFTwoTextBoxes.pdf")
    text = "\n".join(c.text for c in chunks)
    assert text.index("Left column line 2") < text.index("Right column line 1")


def test_gost_table_rows_keep_their_merged_header(docs_dir: Path) -> None:
    chunks = _ingest(docs_dir / "docx/ru/gost_2.105-95.docx")
    row = next(c.text for c in chunks if "Внутренний диаметр шайбы: 4,1" in c.text)
    assert "Толщина шайбы / легкой / а: 1,0" in row


@pytest.mark.parametrize(
    ("name", "file_type"),
    [
        ("pdf/ru/synopsis.pdf", "pdf"),
        ("docx/ru/gost_2.105-95.docx", "docx"),
        ("txt/ru_utf8.txt", "txt"),
    ],
)
def test_chunk_offsets_locate_the_chunk_in_its_page_text(
    docs_dir: Path, name: str, file_type: str
) -> None:
    pages = {p.number: p for p in iter_document(docs_dir / name, file_type)}
    for chunk in iter_chunks(pages.values(), OPTIONS):
        start_text = pages[chunk.page_start].text
        end_text = pages[chunk.page_end].text
        first_word = chunk.text.split()[0]
        assert start_text[chunk.char_start :].startswith(first_word), chunk
        assert end_text[: chunk.char_end].endswith(chunk.text[-12:]), chunk
