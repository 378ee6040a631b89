"""Sentence-level extraction: the sentences of the given passages that answer a question.

Plain Python (razdel, PyStemmer; no app imports): the offline provider quotes what
:func:`select` returns. How it works:

1. **Split.** Each passage is cut into paragraphs at blank lines; a paragraph's line breaks
   (PDF line wraps) become spaces, and razdel finds its sentences (it knows "т. е.", "e.g.",
   initials and decimals). A sentence is always quoted whole.
2. **Score.** A sentence scores the share of the question's keyword weight it contains:
   content words stemmed by the Snowball stemmer of their script (Russian for Cyrillic, English
   for the rest), stop and question words dropped, each weighted by its idf over the sentences
   of the passages (a word in every sentence says little about which one answers); a sentence
   that shares a word with the question gains a little from its passage's and its better
   neighbour's scores (:data:`PASSAGE_WEIGHT`, :data:`NEIGHBOUR_WEIGHT`). When the caller
   passes a :data:`~providers.base.SentenceSimilarity` (e.g. the knowledge base's encoder), its
   cosines, min-max normalised over the sentences, are mixed in with weight
   :attr:`Budget.similarity_weight`.
3. **Pick.** The best sentence, then the next best scoring at least :attr:`Budget.relative`
   of it, within :attr:`Budget.max_sentences` and :attr:`Budget.max_chars`; a sentence
   repeated in two passages (overlapping chunks) is picked once. The picks are returned in
   passage order, then in their order within the passage.

Budgets were chosen with ``python bench/eval_extractive.py`` (see docs/EVALUATION.md).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from providers.base import SentenceSimilarity

_CYRILLIC = re.compile("[\u0400-\u052f]")
_WORD = re.compile(r"[^\W_]+")
_PARAGRAPH = re.compile(r"\n\s*\n")
# Question words and English function words: stop words for this purpose (bm25s's English list
# is Lucene's 33 words; its Russian one, Snowball's, has the function words already).
# fmt: off
_QUESTION_WORDS = frozenset({
    "how", "many", "much", "what", "which", "who", "whom", "whose", "when", "where", "why",
    "does", "did", "do", "done", "is", "are", "was", "were", "been", "being", "has", "have",
    "had", "having", "can", "could", "would", "should", "may", "might", "must", "shall",
    "he", "she", "him", "her", "his", "hers", "its", "we", "us", "our", "you", "your", "i",
    "me", "my", "them", "those", "any", "some", "all", "each", "other", "also", "while",
    "than", "so", "very", "from", "about", "after", "before", "during", "over", "under",
    "сколько", "какой", "какая", "какое", "какие", "каких", "каким", "каков", "какова",
    "почему", "зачем", "откуда", "куда",
})
# fmt: on


@dataclass(frozen=True)
class Budget:
    """How much to quote. ``max_chars`` counts the quoted sentences only; the best sentence is
    always quoted, however long (up to :data:`MAX_SENTENCE_CHARS`)."""

    max_sentences: int = 3
    max_chars: int = 600
    relative: float = 0.7
    similarity_weight: float = 0.5


# Chosen by measurement (bench/eval_extractive.py, xquad-ru and xquad-en, 1,190 questions
# each, the relevant passage and 7 BM25 distractors): 3 sentences at >= 0.7 of the best hold a
# gold answer 0.850 / 0.885 of the time in 336 / 311 characters (the best sentence alone 0.731 /
# 0.764; >= 0.5: +0.02 for +100 characters). See docs/EVALUATION.md.
DEFAULT_BUDGET = Budget()
# How much a sentence's passage, and its better neighbour, add to its own keyword score.
PASSAGE_WEIGHT = 0.5
NEIGHBOUR_WEIGHT = 0.2
# Below this best_passage_score, the passages most likely do not answer (measured with
# bench/eval_extractive.py on xquad-ru/en: refuses <= 2 % of answerable questions).
WEAK_PASSAGE = 0.2
# A "sentence" longer than this is not one (a table or a PDF page without punctuation): it is
# quoted as a window of this size around its first question word, marked with "…".
MAX_SENTENCE_CHARS = 1000


@dataclass(frozen=True)
class Sentence:
    """Sentence ``position`` of passage ``passage`` (indexes into the passages given)."""

    passage: int
    position: int
    text: str
    score: float = 0.0


@cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_RUSSIAN

    words = (*STOPWORDS_EN, *STOPWORDS_RUSSIAN, *_QUESTION_WORDS)
    return frozenset(w.replace("ё", "е") for w in words)


_local = threading.local()


def _stemmers() -> tuple[Any, Any]:
    """(English, Russian) Snowball stemmers of this thread: PyStemmer's are not thread-safe."""
    pair: tuple[Any, Any] | None = getattr(_local, "stemmers", None)
    if pair is None:
        import Stemmer

        pair = (Stemmer.Stemmer("english"), Stemmer.Stemmer("russian"))
        _local.stemmers = pair
    return pair


def stems(text: str) -> list[str]:
    """Content stems of ``text``: lower case, ``ё`` read as ``е``, stop and question words
    dropped, Cyrillic words by the Russian stemmer, the others (and numbers) by the English."""
    english, russian = _stemmers()
    stop = _stopwords()
    out: list[str] = []
    for word in _WORD.findall(text.lower().replace("ё", "е")):
        if word in stop:
            continue
        out.append(russian.stemWord(word) if _CYRILLIC.search(word) else english.stemWord(word))
    return out


@lru_cache(maxsize=2048)
def split_sentences(text: str) -> tuple[str, ...]:
    """The sentences of a passage, whitespace collapsed, in order. Cached: the same chunks come
    back for question after question."""
    import razdel

    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        flat = " ".join(paragraph.split())
        if flat:
            sentences.extend(s.text for s in razdel.sentenize(flat) if s.text.strip())
    return tuple(sentences)


def score_sentences(
    question: str,
    passages: Sequence[str],
    *,
    similarity: SentenceSimilarity | None = None,
    similarity_weight: float = DEFAULT_BUDGET.similarity_weight,
    passage_weight: float = PASSAGE_WEIGHT,
    neighbour_weight: float = NEIGHBOUR_WEIGHT,
) -> list[Sentence]:
    """Every sentence of ``passages`` with its score in [0, 1], in passage and position order.

    The keyword score of a sentence is its own coverage of the question, plus
    ``passage_weight`` times its passage's (the passage as a whole; idf over the passages) and
    ``neighbour_weight`` times the better of its neighbours', normalised to [0, 1]: an answer
    sits in a passage about the question, often next to the sentence that names its subject.
    """
    sentences = [
        Sentence(p, i, text)
        for p, passage in enumerate(passages)
        for i, text in enumerate(split_sentences(passage))
    ]
    if not sentences:
        return []
    own = keyword_scores(question, [s.text for s in sentences])
    whole = keyword_scores(question, passages) if passage_weight else [0.0] * len(passages)
    scores = []
    for k, sentence in enumerate(sentences):
        neighbours = [
            own[j]
            for j in (k - 1, k + 1)
            if 0 <= j < len(sentences) and sentences[j].passage == sentence.passage
        ]
        # Context lifts a sentence that shares a word with the question, never one that does
        # not (that one would be quoted for its neighbours' words).
        context = (
            passage_weight * whole[sentence.passage]
            + neighbour_weight * max(neighbours, default=0.0)
            if own[k] > 0
            else 0.0
        )
        scores.append((own[k] + context) / (1 + passage_weight + neighbour_weight))
    if similarity is not None and similarity_weight > 0:
        cosines = list(similarity(question, [s.text for s in sentences]))
        scores = [
            (1 - similarity_weight) * k + similarity_weight * c
            for k, c in zip(scores, _min_max(cosines), strict=True)
        ]
    return [
        Sentence(s.passage, s.position, s.text, score)
        for s, score in zip(sentences, scores, strict=True)
    ]


def keyword_scores(question: str, sentences: Sequence[str]) -> list[float]:
    """For each sentence, the share of the question's idf weight (idf over ``sentences``) its
    stems cover; 0 for all when the question has no content word."""
    wanted = sorted(set(stems(question)))  # sums in a fixed order: the same float every run
    bags = [set(stems(s)) for s in sentences]
    df = Counter(t for bag in bags for t in wanted if t in bag)
    n = len(sentences)
    weight = {t: math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in wanted}
    total = sum(weight.values())
    if total <= 0:
        return [0.0] * n
    return [sum(weight[t] for t in wanted if t in bag) / total for bag in bags]


# Words that ask for something rather than name it ("tell me everything about invoices",
# «кратко перескажи документ»). The weak-passage judgement leaves them out of the question; a
# question made of nothing else asks about the documents as a whole (a summary, the main
# points), which every passage answers a little and none "covers".
# fmt: off
_REQUEST_WORDS = (
    "tell", "explain", "describe", "summarize", "summarise", "summary", "overview", "outline",
    "list", "give", "show", "everything", "anything", "something", "please", "briefly", "brief",
    "detail", "details", "detailed", "main", "key", "point", "points", "document", "documents",
    "file", "files", "text", "texts", "content", "contents", "say", "says", "contain",
    "contains", "write", "written",
    "расскажи", "расскажите", "объясни", "объясните", "опиши", "опишите", "перескажи",
    "перескажите", "перечисли", "перечислите", "покажи", "дай", "дайте", "кратко", "коротко",
    "вкратце", "подробно", "пожалуйста", "резюме", "суть", "содержание", "документ",
    "документа", "документе", "документы", "документов", "файл", "файла", "файле", "текст",
    "текста", "тексте", "основные", "основное", "главные", "главное", "пункты", "пунктов",
    "всё", "все", "чём", "чем", "говорится", "написано",
)
# fmt: on


@cache
def _request_stems() -> frozenset[str]:
    return frozenset(stems(" ".join(_REQUEST_WORDS)))


def best_topic_score(question: str, passages: Sequence[str]) -> float | None:
    """:func:`best_passage_score` of ``question`` without its request words; ``None`` when
    nothing else is left (the question asks about the documents as a whole)."""
    request = _request_stems()
    topic = [w for w in _WORD.findall(question) if not set(stems(w)) <= request]
    if not stems(" ".join(topic)):
        return None
    return best_passage_score(" ".join(topic), passages)


def best_passage_score(question: str, passages: Sequence[str]) -> float:
    """The best passage's share of the question's keyword weight (idf over ``passages``, the
    passages given to the model), in [0, 1]; 0 when there are none. Below
    :data:`WEAK_PASSAGE` the documents most likely do not answer the question."""
    return max(keyword_scores(question, passages), default=0.0)


def _min_max(values: Sequence[float]) -> list[float]:
    low, high = min(values), max(values)
    if high <= low:
        return [0.0] * len(values)
    return [(v - low) / (high - low) for v in values]


def select(
    question: str,
    passages: Sequence[str],
    *,
    similarity: SentenceSimilarity | None = None,
    budget: Budget = DEFAULT_BUDGET,
) -> list[Sentence]:
    """The sentences that answer ``question`` (:func:`score_sentences`, then :func:`pick`)."""
    scored = score_sentences(
        question, passages, similarity=similarity, similarity_weight=budget.similarity_weight
    )
    return [replace_text(s, _fit(s.text, question)) for s in pick(scored, budget)]


def pick(scored: Sequence[Sentence], budget: Budget = DEFAULT_BUDGET) -> list[Sentence]:
    """The sentences to quote from ``scored`` (passage and position order), in that order.

    When no sentence scores above 0, the first sentence of the first passage (the best
    retrieved) stands in. Empty only when ``scored`` is. Deterministic: ties go to the earlier
    passage and position.
    """
    if not scored:
        return []
    ranked = sorted(scored, key=lambda s: (-s.score, s.passage, s.position))
    best = ranked[0]
    if best.score <= 0:
        best = scored[0]
    chosen = [best]
    seen = {_key(best.text)}
    used = len(best.text)
    for sentence in ranked[1:]:
        if len(chosen) >= budget.max_sentences or sentence.score <= 0:
            break
        if sentence.score < budget.relative * best.score:
            break
        if _key(sentence.text) in seen or used + len(sentence.text) > budget.max_chars:
            continue
        chosen.append(sentence)
        seen.add(_key(sentence.text))
        used += len(sentence.text)
    return sorted(chosen, key=lambda s: (s.passage, s.position))


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def replace_text(sentence: Sentence, text: str) -> Sentence:
    return Sentence(sentence.passage, sentence.position, text, sentence.score)


def _fit(text: str, question: str, limit: int = MAX_SENTENCE_CHARS) -> str:
    """``text`` itself when it is at most ``limit`` characters; else a window of ``limit``
    characters on word boundaries, starting a little before its first question word."""
    if len(text) <= limit:
        return text
    wanted = set(stems(question))
    start = 0
    for match in _WORD.finditer(text):
        if wanted & set(stems(match.group())):
            start = max(0, match.start() - limit // 4)
            break
    if start:
        start = text.find(" ", start) + 1 or start
    end = start + limit
    window = text[start:end].rsplit(" ", 1)[0] if end < len(text) else text[start:]
    return f"{'… ' if start else ''}{window.strip()}{' …' if end < len(text) else ''}"


__all__ = [
    "DEFAULT_BUDGET",
    "MAX_SENTENCE_CHARS",
    "WEAK_PASSAGE",
    "Budget",
    "Sentence",
    "best_passage_score",
    "keyword_scores",
    "pick",
    "score_sentences",
    "select",
    "split_sentences",
    "stems",
]
