"""Chunking: packing, overlap, structure, and offsets that cite the exact place."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from documents.chunking import ChunkDraft, ChunkingOptions, chunk_pages, count_tokens, iter_chunks
from documents.readers import Block, Page


def _page(number: int | None, *blocks: Block) -> Page:
    return Page.from_blocks(number, blocks)


def _para(text: str, path: tuple[str, ...] = ()) -> Block:
    return Block("paragraph", text, 0, path)


def _sentences(n: int, start: int = 0) -> str:
    return " ".join(f"Sentence number {i} says a little." for i in range(start, start + n))


def _assert_offsets_point_into_pages(chunks: list[ChunkDraft], pages: list[Page]) -> None:
    by_number = {p.number: p for p in pages}
    for chunk in chunks:
        start_page, end_page = by_number[chunk.page_start], by_number[chunk.page_end]
        head = chunk.text.split("\n\n", 1)[0].split(" ")[0]
        assert start_page.text[chunk.char_start :].startswith(head), chunk
        assert end_page.text[: chunk.char_end].endswith(chunk.text[-10:]), chunk


def test_token_count_counts_words_and_punctuation_consistently() -> None:
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("Привет, мир — 2024 год.") == 7
    assert count_tokens("") == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"split_rule": "words"},
        {"max_tokens": 4},
        {"max_tokens": 100, "overlap_tokens": 100},
        {"overlap_tokens": -1},
    ],
)
def test_invalid_options_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ChunkingOptions(**kwargs)  # type: ignore[arg-type]


def test_options_are_frozen() -> None:
    with pytest.raises(AttributeError):
        ChunkingOptions().max_tokens = 5  # type: ignore[misc]


def test_short_paragraphs_are_packed_together_up_to_the_limit() -> None:
    pages = [_page(None, *(_para(f"Paragraph {i} is short.") for i in range(10)))]
    chunks = chunk_pages(pages, ChunkingOptions(max_tokens=20, overlap_tokens=0))
    assert all(c.token_count <= 20 for c in chunks)
    assert len(chunks) == 3  # five tokens each, four per chunk
    assert chunks[0].text == "\n\n".join(f"Paragraph {i} is short." for i in range(4))


def test_long_paragraph_is_split_at_sentence_boundaries() -> None:
    pages = [_page(None, _para(_sentences(12)))]
    chunks = chunk_pages(pages, ChunkingOptions(max_tokens=30, overlap_tokens=0))
    assert len(chunks) > 1
    assert all(c.text.endswith(".") and c.text.startswith("Sentence") for c in chunks)
    assert all(c.token_count <= 30 for c in chunks)


def test_a_sentence_longer_than_the_limit_is_cut_into_token_windows() -> None:
    pages = [_page(None, _para(" ".join(f"w{i}" for i in range(100))))]
    chunks = chunk_pages(pages, ChunkingOptions(max_tokens=30, overlap_tokens=0))
    assert [c.token_count for c in chunks] == [30, 30, 30, 10]


def test_next_chunk_repeats_the_end_of_the_previous_one() -> None:
    pages = [_page(None, _para(_sentences(12)))]
    chunks = chunk_pages(pages, ChunkingOptions(max_tokens=30, overlap_tokens=8))
    for previous, current in itertools.pairwise(chunks):
        tail = " ".join(previous.text.split()[-3:])
        assert tail in current.text
        assert current.char_start < previous.char_end


def test_a_heading_starts_a_new_chunk_without_overlap_from_the_previous_section() -> None:
    blocks = [
        Block("heading", "Intro", 1, ("Intro",)),
        _para("Intro text here.", ("Intro",)),
        Block("heading", "Usage", 1, ("Usage",)),
        _para("Usage text here.", ("Usage",)),
    ]
    chunks = chunk_pages([_page(None, *blocks)], ChunkingOptions(max_tokens=200, overlap_tokens=30))
    assert [c.text for c in chunks] == ["Intro\n\nIntro text here.", "Usage\n\nUsage text here."]
    assert [c.heading_path for c in chunks] == [("Intro",), ("Usage",)]


def test_heading_context_prefixes_the_path_to_the_text_to_embed_only() -> None:
    path = ("Guide", "Install")
    blocks = [_para(_sentences(3), path)]
    [chunk] = chunk_pages([_page(None, *blocks)], ChunkingOptions(heading_context=True))
    assert chunk.embed_text == "Guide > Install\n\n" + chunk.text
    assert chunk.heading_label == "Guide > Install"
    [plain] = chunk_pages([_page(None, *blocks)], ChunkingOptions(heading_context=False))
    assert plain.embed_text == plain.text


def test_heading_already_in_the_chunk_is_not_repeated_in_the_prefix() -> None:
    blocks = [
        Block("heading", "Install", 2, ("Guide", "Install")),
        _para("Run it.", ("Guide", "Install")),
    ]
    [chunk] = chunk_pages([_page(None, *blocks)], ChunkingOptions())
    assert chunk.embed_text == "Guide\n\nInstall\n\nRun it."


def test_a_table_that_fits_stays_whole_with_its_caption() -> None:
    rows = "\n\n".join(f"City: C{i}\nPeople: {i}" for i in range(5))
    blocks = [_para(_sentences(4)), Block("caption", "Table 1 Cities"), Block("table", rows)]
    chunks = chunk_pages([_page(None, *blocks)], ChunkingOptions(max_tokens=40, overlap_tokens=5))
    table_chunk = next(c for c in chunks if "C0" in c.text)
    assert table_chunk.text == "Table 1 Cities\n\n" + rows
    assert sum("C0" in c.text for c in chunks) == 1


def test_a_table_too_big_is_split_by_rows_each_with_header_and_caption() -> None:
    rows = "\n\n".join(f"City: C{i}\nPeople: {i}" for i in range(30))
    blocks = [Block("caption", "Table 2 Cities"), Block("table", rows)]
    chunks = chunk_pages([_page(None, *blocks)], ChunkingOptions(max_tokens=30, overlap_tokens=5))
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.text.startswith("Table 2 Cities\n\nCity: C")
        for row in chunk.text.split("\n\n")[1:]:
            assert row.startswith("City: ") and "\nPeople: " in row  # rows never cut
    assert chunks[-1].text.endswith("City: C29\nPeople: 29")


def test_chunks_know_their_pages_and_span_page_breaks() -> None:
    pages = [_page(1, _para("Alpha beta gamma.")), _page(2, _para("Delta epsilon zeta."))]
    [chunk] = chunk_pages(pages, ChunkingOptions(max_tokens=50))
    assert (chunk.page_start, chunk.page_end) == (1, 2)
    assert (chunk.char_start, chunk.char_end) == (0, len("Delta epsilon zeta."))


def test_char_offsets_point_to_the_exact_place_in_the_page_text() -> None:
    pages = [
        _page(n, _para(_sentences(5, n * 10)), _para(_sentences(7, n * 10 + 5)))
        for n in range(1, 4)
    ]
    chunks = chunk_pages(pages, ChunkingOptions(max_tokens=40, overlap_tokens=10))
    _assert_offsets_point_into_pages(chunks, pages)
    first = chunks[0]
    assert pages[0].text[first.char_start : first.char_end].startswith("Sentence number 10")


def test_ordinals_are_consecutive_from_zero() -> None:
    pages = [_page(None, _para(_sentences(40)))]
    chunks = chunk_pages(pages, ChunkingOptions(max_tokens=30, overlap_tokens=5))
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_sentence_rule_packs_sentences_across_paragraphs() -> None:
    blocks = [_para("One two."), _para("Three four."), _para("Five six.")]
    [chunk] = chunk_pages(
        [_page(None, *blocks)], ChunkingOptions(split_rule="sentence", max_tokens=50)
    )
    assert chunk.text == "One two.\n\nThree four.\n\nFive six."


def test_fixed_rule_cuts_windows_of_exactly_max_tokens_ignoring_headings() -> None:
    blocks = [Block("heading", "H", 1, ("H",)), _para(" ".join(f"w{i}" for i in range(40)), ("H",))]
    chunks = chunk_pages(
        [_page(None, *blocks)], ChunkingOptions(split_rule="fixed", max_tokens=20, overlap_tokens=0)
    )
    assert [c.token_count for c in chunks] == [20, 20, 1]


def test_iter_chunks_streams_from_an_endless_page_generator() -> None:
    def endless() -> Iterator[Page]:
        for n in itertools.count(1):
            yield _page(n, _para(_sentences(3, n * 3)))

    options = ChunkingOptions(max_tokens=40, overlap_tokens=5)
    first = list(itertools.islice(iter_chunks(endless(), options), 5))
    assert [c.ordinal for c in first] == [0, 1, 2, 3, 4]
    assert first[-1].page_end is not None and first[-1].page_end < 10


def test_no_pages_give_no_chunks() -> None:
    assert chunk_pages([], ChunkingOptions()) == []


def test_sentence_pieces_keep_closing_quotes_and_exact_offsets() -> None:
    text = 'He said "Stop." Then he left!  "Why?" she asked. ' + _sentences(8)
    pages = [_page(None, _para(text))]
    chunks = chunk_pages(pages, ChunkingOptions(max_tokens=12, overlap_tokens=0))
    assert [c.text for c in chunks[:2]] == ['He said "Stop." Then he left!', '"Why?" she asked.']
    for chunk in chunks:
        assert pages[0].text[chunk.char_start : chunk.char_end] == chunk.text
