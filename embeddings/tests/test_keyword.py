from __future__ import annotations

import io

import numpy as np

from embeddings import keyword
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
