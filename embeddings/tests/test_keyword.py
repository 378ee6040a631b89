from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest

from embeddings import keyword, store
from embeddings.keyword import KeywordSegment, Tokenizer

tok = Tokenizer()


def test_tokenizer_lowercases_stems_each_script_with_its_own_stemmer_and_drops_stopwords():
    tokens = tok.tokenize("Условия ДОГОВОРОВ and the Contracts, ёлка")
    assert tokens == ["contract", "услов", "договор", "елк"]


def test_a_word_mixing_latin_and_cyrillic_is_split_in_two():
    mixed = "PDF\u0444\u0430\u0439\u043b\u044b"  # PDF + a Russian word, no space
    assert sorted(tok.tokenize(mixed)) == ["pdf", "файл"]


def _segment(texts: list[str], start_id: int = 1) -> KeywordSegment:
    return KeywordSegment.build(
        list(range(start_id, start_id + len(texts))), [tok.tokenize(t) for t in texts]
    )


def test_russian_query_in_another_case_finds_the_base_form():
    seg = _segment(["Текст договора поставки", "Погода в Москве", "Список договор"])
    hits = keyword.search([keyword.view(seg, None)], tok.tokenize("договоров"), 10)
    assert {h[0] for h in hits} == {1, 3}


def test_english_plural_query_finds_the_singular():
    seg = _segment(["the contract is signed", "weather report", "another document"])
    hits = keyword.search([keyword.view(seg, None)], tok.tokenize("contracts"), 10)
    assert [h[0] for h in hits] == [1]


def test_scores_follow_bm25_and_ties_are_broken_by_id():
    seg = _segment(["apple banana", "apple banana", "apple apple apple banana", "cherry"])
    hits = keyword.search([keyword.view(seg, None)], ["appl"], 10)
    assert [h[0] for h in hits] == [3, 1, 2]
    n, df, avgdl = 4, 3, 9 / 4
    expected = keyword.idf(n, df) * 1 / (1 + keyword.K1 * (1 - keyword.B + keyword.B * 2 / avgdl))
    assert abs(hits[1][1] - expected) < 1e-5


def test_deleted_and_filtered_chunks_are_not_returned():
    seg = _segment(["apple one", "apple two", "apple three"])
    view = keyword.view(seg, np.asarray([2], dtype=np.int64))
    hits = keyword.search([view], ["appl"], 10, allowed=np.asarray([2, 3], dtype=np.int64))
    assert [h[0] for h in hits] == [3]


def test_scores_over_two_segments_equal_scores_over_one_merged_segment():
    texts = ["apple pie recipe", "banana bread", "apple banana smoothie", "cherry apple tart"]
    one = _segment(texts)
    a, b = _segment(texts[:2]), _segment(texts[2:], start_id=3)
    query = tok.tokenize("apple banana")
    whole = keyword.search([keyword.view(one, None)], query, 10)
    split = keyword.search([keyword.view(a, None), keyword.view(b, None)], query, 10)
    merged_seg = KeywordSegment.merge([(a, np.ones(2, dtype=bool)), (b, np.ones(2, dtype=bool))])
    merged = keyword.search([keyword.view(merged_seg, None)], query, 10)
    assert [h[0] for h in whole] == [h[0] for h in split] == [h[0] for h in merged]
    np.testing.assert_allclose([h[1] for h in whole], [h[1] for h in merged], rtol=1e-6)


def test_merge_drops_deleted_chunks():
    seg = _segment(["apple", "banana", "apple banana"])
    merged = KeywordSegment.merge([(seg, np.asarray([True, False, True]))])
    assert merged.ids.tolist() == [1, 3]
    assert merged.document_frequency("banana") == 1


def test_a_segment_survives_a_save_and_load_round_trip():
    seg = _segment(["Договор поставки", "contract", ""])
    buffer = io.BytesIO()
    seg.save(buffer)
    buffer.seek(0)
    loaded = KeywordSegment.load(buffer)
    assert loaded.terms == seg.terms
    np.testing.assert_array_equal(loaded.indptr, seg.indptr)
    np.testing.assert_array_equal(loaded.ids, seg.ids)


def test_cjk_runs_become_character_bigrams_and_characters():
    assert tok.tokenize("東京都") == ["東京", "京都", "東", "京", "都"]
    # Latin and Cyrillic words keep their stemming beside a CJK run in the same text.
    assert tok.tokenize("Contracts 合同 договоров") == ["contract", "договор", "合同", "合", "同"]
    assert tok.tokenize("검색") == ["검색", "검", "색"]
    assert keyword.script_counts(tok.tokenize("東京 contracts")) == (1, 0)


def test_chinese_japanese_and_korean_text_is_keyword_searchable():
    seg = _segment(
        [
            "我喜欢在北京大学学习机器学习",  # zh: I like studying machine learning at PKU
            "東京都に住んでいます",  # ja: I live in Tokyo
            "한국어 텍스트 검색 엔진",  # ko: Korean text search engine
            "the weather in Moscow",
        ]
    )
    views = [keyword.view(seg, None)]

    def top(query: str) -> int:
        return keyword.search(views, tok.tokenize(query), 10)[0][0]

    assert top("机器学习") == 1  # a word inside a sentence without spaces
    assert top("東京") == 2
    assert top("검색 엔진") == 3
    assert top("猫和北京") == 1  # only the shared bigram and characters match
    assert keyword.search(views, tok.tokenize("上海"), 10) == []  # no shared character


def test_a_one_character_cjk_query_finds_the_character_inside_a_run():
    seg = _segment(["我喜欢猫", "我喜欢狗"])
    hits = keyword.search([keyword.view(seg, None)], tok.tokenize("猫"), 10)
    assert [h[0] for h in hits] == [1]


# --- tokenizer version 2 (see keyword.TOKENIZER_VERSION) ------------------------------------


def test_one_character_words_are_kept_unless_they_are_stop_words():
    # "vitamin D", "T cells", "Apollo 8" carry meaning; "a", "в" are stop words.
    assert tok.tokenize("Vitamin D and T cells, Apollo 8, в 5 лет, a cat") == [
        *["vitamin", "d", "t", "cell", "apollo", "8", "5", "cat"],
        "лет",
    ]
    seg = _segment(["Apollo 8 flew in 1968", "Apollo 11 landed in 1969"])
    hits = keyword.search([keyword.view(seg, None)], tok.tokenize("Apollo 8"), 10)
    assert [h[0] for h in hits] == [1, 2]


def test_accents_of_latin_letters_are_folded():
    assert tok.tokenize("José Piñera, Krüppel, Straße, Łódź") == [
        *["jose", "pinera", "kruppel", "strass", "lodz"]
    ]
    seg = _segment(["Sebastián Piñera was president", "the weather in Chile"])
    hits = keyword.search([keyword.view(seg, None)], tok.tokenize("Sebastian Pinera"), 10)
    assert [h[0] for h in hits] == [1]


def test_greek_letters_stay_inside_their_word():
    assert tok.tokenize("NF-κB, TGF-β1, PPARγ, 5 µm") == [
        *["nf", "κb", "tgf", "β1", "pparγ", "5", "μm"]  # the micro sign is NFKC's Greek mu
    ]


def test_cyrillic_letters_keep_their_marks_and_stress_marks_do_not_split_words():
    assert tok.tokenize("йогурт ёлка") == ["йогурт", "елк"]  # й is not folded into и
    assert tok.tokenize("зна\u0301ние") == tok.tokenize("знание") == ["знан"]
    assert tok.tokenize("Київ і Львів") == ["київ", "і", "львів"]  # the whole Cyrillic block


def test_full_width_letters_and_ligatures_are_read_as_letters():
    assert tok.tokenize("\uff30\uff24\uff26 \ufb01le") == ["pdf", "file"]


def test_numbers_count_as_neither_script():
    assert keyword.script_counts(tok.tokenize("2015 8 договор contract")) == (1, 1)


def test_a_manifest_without_a_tokenizer_version_was_written_by_version_1():
    fresh = store.Manifest()
    assert fresh.tokenizer == keyword.TOKENIZER_VERSION == Tokenizer.version
    assert store.Manifest.from_json(fresh.to_json()).tokenizer == keyword.TOKENIZER_VERSION
    old = json.loads(fresh.to_json())
    del old["tokenizer"]
    assert store.Manifest.from_json(json.dumps(old)).tokenizer == 1


def mark_built_by_version_1(folder: Any) -> None:
    """Rewrite ``folder``'s manifest as the code before tokenizer versions wrote it."""
    path = folder / store.MANIFEST
    data = json.loads(path.read_text())
    data.pop("tokenizer", None)
    tmp = path.with_name("manifest.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)  # a new inode: readers notice it


def test_an_index_of_an_older_tokenizer_is_stale_for_readers_and_writers(tmp_path):
    index = store.KnowledgeBaseIndex(tmp_path / "kb")
    vectors = np.eye(2, 4, dtype=np.float32)
    index.add([1, 2], vectors, [["appl"], ["banana"]], model="m", dimension=4)
    mark_built_by_version_1(tmp_path / "kb")
    with pytest.raises(store.StaleIndex):
        index.snapshot()
    with pytest.raises(store.StaleIndex):  # an IndexCorrupt: services rebuild the index
        index.add([3], vectors[:1], [["cherri"]], model="m", dimension=4)
    rebuilt = index.replace_all(
        [(np.asarray([1, 2]), vectors, [["appl"], ["banana"]])], model="m", dimension=4
    )
    assert rebuilt.manifest.tokenizer == keyword.TOKENIZER_VERSION and rebuilt.count == 2
