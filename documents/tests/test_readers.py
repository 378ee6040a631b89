"""Readers: structure, encodings and the reasons given for files that cannot be read."""

# Russian text is what these tests are about: Cyrillic letters that look Latin are intended
# (RUF100: the project may already ignore RUF001 globally).
# ruff: noqa: RUF001, RUF100

from __future__ import annotations

import inspect
import zipfile
from pathlib import Path

import pytest

from documents.readers import UnreadableDocument, count_pages, iter_document, read_document
from documents.readers import pdf as pdf_reader
from documents.readers.docx import _package as docx_package
from documents.readers.txt import decode_bytes, detect_encoding

from .conftest import W_NS, make_docx, make_pdf, para, table

RUSSIAN = "Съешь же ещё этих мягких французских булок, да выпей чаю. В гимназии он учился."


# --- text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding",
    ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1251", "koi8_r", "cp866"],
)
def test_text_in_every_supported_encoding_decodes_to_the_same_russian(encoding: str) -> None:
    assert decode_bytes(RUSSIAN.encode(encoding)) == RUSSIAN


def test_western_text_with_accents_is_not_mistaken_for_cyrillic() -> None:
    text = "Grüße aus München; schöne Straße, Äpfel und Öl über alles. " * 3
    assert decode_bytes(text.encode("cp1252")) == text


def test_utf16_without_bom_is_recognised_by_its_zero_bytes() -> None:
    assert detect_encoding("DateTime,Bid,Ask\r\n1,2,3\r\n".encode("utf-16-le")) == "utf-16-le"
    assert detect_encoding("Привет, мир".encode("utf-16-be")) == "utf-16-be"


def test_empty_text_file_is_rejected_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"  \n\r\n")
    with pytest.raises(UnreadableDocument, match="empty"):
        read_document(path, "txt")


def test_binary_data_uploaded_as_text_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(bytes(range(0, 32)) * 50)
    with pytest.raises(UnreadableDocument, match="not text"):
        read_document(path, "txt")


def test_text_file_is_one_unpaged_page_of_paragraphs_split_at_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("First line\nstill first.\n\n\nSecond paragraph.", encoding="utf-8")
    [page] = read_document(path, "txt")
    assert page.number is None
    assert [b.text for b in page.blocks] == ["First line\nstill first.", "Second paragraph."]
    assert page.text == "First line\nstill first.\n\nSecond paragraph."


# --- markdown and html ------------------------------------------------------------------


def test_markdown_headings_become_heading_blocks_with_paths(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(
        "# Guide\n\nIntro text.\n\n## Install\n\n- step one\n- step two\n\n"
        "| Name | Port |\n|---|---|\n| web | 80 |\n",
        encoding="utf-8",
    )
    [page] = read_document(path, "md")
    kinds = [(b.kind, b.text) for b in page.blocks]
    assert kinds[0] == ("heading", "Guide")
    assert ("heading", "Install") in kinds
    assert ("list_item", "step one") in kinds
    assert ("table", "Name: web\nPort: 80") in kinds
    assert page.blocks[-1].heading_path == ("Guide", "Install")


def test_html_drops_scripts_and_styles_and_keeps_headings_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "a.html"
    path.write_text(
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<script>alert('x')</script><h1>Prices</h1><p>Our <b>current</b> prices.</p>"
        "<table><caption>Table 1</caption><tr><th>Item</th><th>Cost</th></tr>"
        "<tr><td>Tea</td><td>5</td></tr></table><ul><li>one</li></ul></body></html>",
        encoding="utf-8",
    )
    [page] = read_document(path, "html")
    assert "alert" not in page.text and "p{}" not in page.text
    assert [(b.kind, b.text) for b in page.blocks] == [
        ("heading", "Prices"),
        ("paragraph", "Our current prices."),
        ("caption", "Table 1"),
        ("table", "Item: Tea\nCost: 5"),
        ("list_item", "one"),
    ]


def test_html_in_cp1251_is_decoded_with_its_declared_charset(tmp_path: Path) -> None:
    path = tmp_path / "ru.html"
    html = f'<html><head><meta charset="windows-1251"></head><body><p>{RUSSIAN}</p></body></html>'
    path.write_bytes(html.encode("cp1251"))
    [page] = read_document(path, "html")
    assert page.text == RUSSIAN


def test_html_without_visible_text_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "a.html"
    path.write_text("<html><body><script>var a;</script></body></html>", encoding="utf-8")
    with pytest.raises(UnreadableDocument, match="no visible text"):
        read_document(path, "html")


# --- docx -------------------------------------------------------------------------------


def test_docx_headings_come_from_style_names_and_outline_levels(tmp_path: Path) -> None:
    body = para("Chapter", style="Heading1") + para("Section", style="2") + para("Body.")
    [page] = read_document(make_docx(tmp_path / "a.docx", body), "docx")
    assert [(b.kind, b.level) for b in page.blocks] == [
        ("heading", 1),
        ("heading", 2),
        ("paragraph", 0),
    ]
    assert page.blocks[-1].heading_path == ("Chapter", "Section")


def test_docx_list_items_carry_their_numbers_and_levels(tmp_path: Path) -> None:
    body = para("one", num=(1, 0)) + para("sub", num=(1, 1)) + para("two", num=(1, 0))
    body += para("dot", num=(2, 0))
    [page] = read_document(make_docx(tmp_path / "a.docx", body), "docx")
    assert [(b.kind, b.text, b.level) for b in page.blocks] == [
        ("list_item", "1. one", 0),
        ("list_item", "1.a) sub", 1),
        ("list_item", "2. two", 0),
        ("list_item", "• dot", 0),
    ]


def test_docx_table_rows_repeat_the_header_so_each_row_stands_alone(tmp_path: Path) -> None:
    body = table([["City", "Population"], ["Moscow", "13 M"], ["Kazan", "1.3 M"]])
    [page] = read_document(make_docx(tmp_path / "a.docx", body), "docx")
    assert page.blocks[0].kind == "table"
    assert page.blocks[0].text == "City: Moscow\nPopulation: 13 M\n\nCity: Kazan\nPopulation: 1.3 M"


def test_docx_multi_row_headers_are_merged_per_column(tmp_path: Path) -> None:
    body = table([["Size", "Weight"], ["mm", "kg"], ["10", "2"]], header_rows=2)
    [page] = read_document(make_docx(tmp_path / "a.docx", body), "docx")
    assert page.blocks[0].text == "Size / mm: 10\nWeight / kg: 2"


def test_docx_keeps_text_in_content_controls_nested_tables_and_text_boxes(tmp_path: Path) -> None:
    sdt = f"<w:sdt><w:sdtContent>{para('Inside a content control')}</w:sdtContent></w:sdt>"
    nested = table([["Outer", table([["Inner head"], ["Inner value"]])], ["a", "b"]])
    box = (
        '<w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wps:txbx>'
        f"<w:txbxContent>{para('Boxed text')}</w:txbxContent></wps:txbx></w:drawing>"
        "</mc:Choice><mc:Fallback><w:pict><v:textbox>"
        f"<w:txbxContent>{para('Boxed text')}</w:txbxContent></v:textbox></w:pict>"
        "</mc:Fallback></mc:AlternateContent></w:r></w:p>"
    )
    [page] = read_document(make_docx(tmp_path / "a.docx", sdt + nested + box), "docx")
    assert "Inside a content control" in page.text
    assert "Inner head: Inner value" in page.text
    assert page.text.count("Boxed text") == 1  # the VML fallback copy is not read twice


def test_docx_reads_footnotes_headers_and_footers_once(tmp_path: Path) -> None:
    notes = (
        f'<w:footnotes xmlns:w="{W_NS}"><w:footnote w:type="separator" w:id="0">'
        f'{para("---")}</w:footnote><w:footnote w:id="1">{para("See the annex.")}</w:footnote>'
        "</w:footnotes>"
    )
    header = f'<w:hdr xmlns:w="{W_NS}">{para("ACME confidential")}</w:hdr>'
    body = '<w:p><w:r><w:t>Claim</w:t></w:r><w:r><w:footnoteReference w:id="1"/></w:r></w:p>'
    path = make_docx(
        tmp_path / "a.docx",
        body,
        parts={
            "footnotes.xml": ("footnotes", notes),
            "header1.xml": ("header", header),
            "header2.xml": ("header", header),
        },
    )
    [page] = read_document(path, "docx")
    assert [b.text for b in page.blocks] == ["Claim[1]", "[1] See the annex.", "ACME confidential"]


def test_docx_without_text_is_rejected_as_empty(tmp_path: Path) -> None:
    with pytest.raises(UnreadableDocument, match="contains no text"):
        read_document(make_docx(tmp_path / "a.docx", "<w:p/>"), "docx")


def test_docx_that_unpacks_past_the_size_cap_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docx_package, "MAX_UNCOMPRESSED_BYTES", 1_000_000)
    path = make_docx(
        tmp_path / "a.docx", para("x"), extra_files={"word/media/pad.bin": b"\0" * 1_200_000}
    )
    with pytest.raises(UnreadableDocument, match="zip bomb"):
        read_document(path, "docx")


def test_docx_with_an_extreme_compression_ratio_is_refused(tmp_path: Path) -> None:
    path = make_docx(
        tmp_path / "a.docx", para("x"), extra_files={"word/bomb.xml": b"\0" * 12_000_000}
    )
    with pytest.raises(UnreadableDocument, match="zip bomb"):
        read_document(path, "docx")


def test_zip_without_a_word_document_is_not_a_docx(tmp_path: Path) -> None:
    path = tmp_path / "a.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(UnreadableDocument, match=r"not a Word document"):
        read_document(path, "docx")


def test_truncated_docx_is_reported_as_damaged(tmp_path: Path) -> None:
    good = make_docx(tmp_path / "good.docx", para("Some text"))
    cut = tmp_path / "cut.docx"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(UnreadableDocument, match="damaged or incomplete"):
        read_document(cut, "docx")


# --- pdf --------------------------------------------------------------------------------


def test_pdf_pages_keep_physical_numbers_and_skip_pages_without_text(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "a.pdf", [["First page"], None, ["Third page"]])
    pages = read_document(path, "pdf")
    assert [(p.number, p.text) for p in pages] == [(1, "First page"), (3, "Third page")]


def test_pdf_pages_are_read_lazily_one_at_a_time(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "a.pdf", [[f"Page {i}"] for i in range(1, 6)])
    pages = pdf_reader.iter_pages(path)
    assert inspect.isgenerator(pages)
    assert next(pages).number == 1


def test_pdf_with_only_image_pages_asks_for_ocr(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "a.pdf", [None, None])
    with pytest.raises(UnreadableDocument, match=r"no text layer.*OCR"):
        read_document(path, "pdf")


def test_pdf_whose_fonts_only_give_cid_codes_is_rejected(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "a.pdf", [["Hello world"]], cid_font=True)
    with pytest.raises(UnreadableDocument, match=r"\(cid:NN\)"):
        read_document(path, "pdf")


def test_pdf_with_zero_pages_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UnreadableDocument, match="no pages"):
        read_document(make_pdf(tmp_path / "a.pdf", []), "pdf")


def test_truncated_pdf_is_reported_as_damaged(tmp_path: Path) -> None:
    good = make_pdf(tmp_path / "a.pdf", [["Some text"]] * 3)
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(UnreadableDocument, match="damaged or incomplete"):
        read_document(cut, "pdf")


def test_pdf_longer_than_max_pages_is_refused_with_the_limit(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "a.pdf", [["x"]] * 3)
    with pytest.raises(UnreadableDocument, match="more than 2 pages"):
        read_document(path, "pdf", max_pages=2)


def test_pdf_page_count_is_read_without_parsing_pages(tmp_path: Path) -> None:
    assert count_pages(make_pdf(tmp_path / "a.pdf", [["x"]] * 4), "pdf") == 4
    assert count_pages(tmp_path / "a.pdf", "txt") is None


def test_password_protected_pdf_asks_to_remove_the_password(docs_dir: Path) -> None:
    with pytest.raises(UnreadableDocument, match="password-protected"):
        read_document(docs_dir / "pdf/pdfminer/encryption/aes-256.pdf", "pdf")


def test_pdf_encrypted_with_an_empty_user_password_opens(docs_dir: Path) -> None:
    pages = read_document(docs_dir / "pdf/pdfminer/dmca.pdf", "pdf")
    assert pages[0].number == 1 and "COPYRIGHT" in pages[0].text


def test_unknown_file_type_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown file type"):
        list(iter_document(tmp_path / "a.bin", "exe"))


def test_html_nested_table_becomes_its_own_block_not_part_of_the_cell(tmp_path: Path) -> None:
    path = tmp_path / "a.html"
    path.write_text(
        "<table><tr><th>Plan</th><th>Details</th></tr><tr><td>Pro</td><td>See:"
        "<table><tr><th>Seats</th></tr><tr><td>10</td></tr></table></td></tr></table>",
        encoding="utf-8",
    )
    [page] = read_document(path, "html")
    assert [b.text for b in page.blocks] == ["Plan: Pro\nDetails: See:", "Seats: 10"]


def test_pdf_reads_correctly_after_the_object_cache_is_trimmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf_reader, "_OBJECT_CACHE_LIMIT", 1)
    path = make_pdf(tmp_path / "a.pdf", [[f"Page {i} text"] for i in range(1, 8)])
    assert [p.text for p in read_document(path, "pdf")] == [f"Page {i} text" for i in range(1, 8)]


def test_pdf_lines_set_in_a_larger_font_become_headings_across_pages(tmp_path: Path) -> None:
    body = "Body text of the section goes on for a while."
    pages = [
        [("Annual Report", 24), ("Revenue", 16), body, body, body],
        [body, ("Costs", 16), body, body],
    ]
    path = make_pdf(tmp_path / "a.pdf", pages)  # type: ignore[arg-type]
    first, second = read_document(path, "pdf")
    assert [(b.kind, b.level) for b in first.blocks[:2]] == [("heading", 1), ("heading", 2)]
    assert first.blocks[2].heading_path == ("Annual Report", "Revenue")
    assert second.blocks[0].heading_path == ("Annual Report", "Revenue")
    assert second.blocks[1].text == "Costs" and second.blocks[1].kind == "heading"
    assert second.blocks[2].heading_path == ("Annual Report", "Costs")


def test_pdf_running_header_in_a_large_font_is_not_a_heading_on_later_pages(
    tmp_path: Path,
) -> None:
    body = "Body text of the page that is long enough to dominate."
    pages = [[("Form 1040 Page 1", 16), body, body], [("Form 1040 Page 2", 16), body, body]]
    path = make_pdf(tmp_path / "a.pdf", pages)  # type: ignore[arg-type]
    second = read_document(path, "pdf")[1]
    assert second.blocks[0].kind == "paragraph"
