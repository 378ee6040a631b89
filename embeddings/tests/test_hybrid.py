from __future__ import annotations

import numpy as np
import pytest

from embeddings import hybrid
from embeddings.hybrid import Weights
from embeddings.keyword import Ranking

DENSE = [(1, 0.9), (2, 0.5), (3, 0.1)]
KEYWORD = [(3, 12.0), (4, 6.0), (2, 0.0)]


@pytest.mark.parametrize("method", hybrid.FUSIONS)
def test_fusion_keeps_both_scores_and_ranks_and_scales_to_one(method):
    hits = hybrid.fuse(DENSE, KEYWORD, Weights(1, 1), method=method)
    by_id = {h.chunk_id: h for h in hits}
    assert set(by_id) == {1, 2, 3, 4}
    assert by_id[3].dense == 0.1 and by_id[3].keyword == 12.0
    assert by_id[3].dense_rank == 3 and by_id[3].keyword_rank == 1
    assert all(0 <= h.score <= 1 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_convex_fusion_is_the_weighted_mean_of_min_max_normalised_scores():
    hits = {h.chunk_id: h.score for h in hybrid.fuse(DENSE, KEYWORD, Weights(1, 3))}
    assert hits[1] == pytest.approx(1 / 4)  # dense 1.0, keyword absent
    assert hits[3] == pytest.approx(3 / 4)  # dense 0.0, keyword 1.0
    assert hits[4] == pytest.approx(3 * 0.5 / 4)


def test_rrf_scores_a_chunk_first_in_both_lists_as_one():
    hits = hybrid.fuse([(7, 0.3)], [(7, 2.0)], Weights(0.5, 2), method="rrf")
    assert hits[0].score == pytest.approx(1.0)


def test_equal_fused_scores_are_ordered_by_chunk_id():
    hits = hybrid.fuse([(9, 1.0), (4, 1.0)], [], Weights(1, 1))
    assert [h.chunk_id for h in hits] == [4, 9]


def test_a_side_with_weight_zero_does_not_add_chunks():
    hits = hybrid.fuse(DENSE, KEYWORD, Weights(0, 1))
    assert {h.chunk_id for h in hits} == {2, 3, 4}


def test_language_of_text_and_corpus():
    assert hybrid.text_language("Где договор?") == "ru"
    assert hybrid.text_language("Where is the contract?") == "en"
    assert hybrid.text_language("42 %") == ""
    assert hybrid.text_language("机器学习是什么") == "zh"
    assert hybrid.text_language("東京都に住んでいます") == "ja"
    assert hybrid.text_language("한국어 검색") == "ko"
    assert hybrid.text_language("What is 合同?") == "en"
    assert hybrid.corpus_language(10, 90) == "ru"
    assert hybrid.corpus_language(50, 50) == ""


def test_dense_weight_drops_when_the_encoder_does_not_know_the_query_language():
    english = frozenset({"en"})
    ru = hybrid.effective_weights(
        1, 1, query_language="ru", corpus_languages=[], encoder_languages=english
    )
    en = hybrid.effective_weights(
        1, 1, query_language="en", corpus_languages=["en"], encoder_languages=english
    )
    kb_ru = hybrid.effective_weights(
        1, 1, query_language="en", corpus_languages=["ru"], encoder_languages=english
    )
    multi = hybrid.effective_weights(
        1, 1, query_language="ru", corpus_languages=["ru"], encoder_languages=frozenset({"*"})
    )
    assert ru.dense == 0 and "ru" in ru.reason
    assert kb_ru.dense == 0
    assert (en.dense, multi.dense) == (1, 1)


def test_a_ranking_is_a_read_only_list_of_pairs_built_from_its_arrays():
    ranking = Ranking.of(np.asarray([5, 6], dtype=np.int64), np.asarray([0.9, 0.1]))
    assert ranking == [(5, 0.9), (6, 0.1)] and list(ranking) == [(5, 0.9), (6, 0.1)]
    assert ranking[0] == (5, 0.9) and ranking[-1:] == [(6, 0.1)] and len(ranking) == 2
    assert not hasattr(ranking, "append")
    assert [h.chunk_id for h in hybrid.fuse(ranking, [], Weights(1, 1))] == [5, 6]
    # A plain list of pairs fuses the same.
    assert hybrid.fuse([(5, 0.9), (6, 0.1)], [], Weights(1, 1)) == hybrid.fuse(
        ranking, [], Weights(1, 1)
    )
    with pytest.raises(ValueError):
        Ranking.of(np.asarray([1], dtype=np.int64), np.asarray([0.5, 0.4]))
