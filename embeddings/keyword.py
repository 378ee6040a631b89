"""BM25 keyword search: a Russian- and English-aware tokenizer and immutable index segments.

An index is a list of segments (Lucene's design): each segment is an inverted index over a batch
of chunks, built once and never changed. Adding chunks adds a small segment; removing chunks marks
them deleted; segments are merged in the background of a write. Scores are computed at query time
from postings (term frequencies and document lengths) with collection statistics summed over the
live segments, so adding or removing a document never re-scores the whole collection.

Plain Python and numpy; PyStemmer is loaded on first use.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, overload

import numpy as np
from numpy.typing import NDArray

K1 = 1.5
B = 0.75

# What the tokens of an index mean: the manifest records it, and an index built by another
# version is rebuilt from the database (embeddings.store.StaleIndex), since a query tokenised
# differently from the indexed text would silently miss. History:
#   1  words of two or more characters, [a-z0-9] and [a-ya] only
#   2  one-character words kept; NFKC, accents folded (e-acute -> e, sharp s -> ss); Greek and
#      other alphabets' letters are word characters; the whole Cyrillic block is Cyrillic
TOKENIZER_VERSION = 2

# Cyrillic letters are written as escapes: they look like Latin ones in an editor.
_CYR_IE, _CYR_YO = "\u0435", "\u0451"
_CYRILLIC_BLOCK = "\u0400-\u052f"
# Runs of Han (with the iteration mark), Hiragana, Katakana and Hangul: CJK text has no spaces
# between words, so a run is indexed as overlapping character bigrams (as Lucene's CJK analyzer
# does) plus its single characters (so that a one-character query, e.g. "cat", still matches).
_CJK_CLASS = (
    "\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
)
_CJK = re.compile(f"[{_CJK_CLASS}]+")
_CYRILLIC = re.compile(f"[{_CYRILLIC_BLOCK}]+")
# Every other run of letters and digits: Latin (after folding), digits, Greek (NF-kB, TGF-beta
# are written with Greek letters), any other alphabet. Not the underscore.
_OTHER = re.compile(f"[^\\W_{_CYRILLIC_BLOCK}{_CJK_CLASS}]+")
# Combining marks left after NFKC (a Russian stress mark, an accent typed separately): dropped,
# so that they do not cut a word in two. Letters such as Cyrillic short i and yo are precomposed
# by NFKC, so they keep their marks.
_COMBINING = re.compile("[\u0300-\u036f]")
# Letters with no decomposition that ASCII folding (Lucene's ASCIIFoldingFilter) still maps.
_FOLD_SPECIAL = {
    "\u00df": "ss",  # sharp s
    "\u00e6": "ae",
    "\u0153": "oe",
    "\u00f8": "o",
    "\u0142": "l",  # Polish l with stroke
    "\u0111": "d",  # d with stroke
    "\u00f0": "d",  # eth
    "\u00fe": "th",  # thorn
    "\u0131": "i",  # dotless i
    "\u0127": "h",
    "\u0167": "t",
}
# Latin-1, Latin Extended-A/B, Latin Extended Additional, Greek and Greek Extended.
_FOLD_RANGES = ((0x00C0, 0x024F), (0x1E00, 0x1EFF), (0x0370, 0x03FF), (0x1F00, 0x1FFF))
_FOLDABLE = re.compile("[\u00c0-\u024f\u1e00-\u1eff\u0370-\u03ff\u1f00-\u1fff]")

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float32]


@cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_RUSSIAN

    return frozenset(word.replace(_CYR_YO, _CYR_IE) for word in (*STOPWORDS_EN, *STOPWORDS_RUSSIAN))


@cache
def _fold_table() -> dict[int, str]:
    """Latin and Greek letters with accents -> the letters without (``é`` -> ``e``,
    ``ά`` -> ``α``, ``ß`` -> ``ss``); Cyrillic is left alone (``й``, ``ё`` are letters)."""
    table: dict[int, str] = {}
    for low, high in _FOLD_RANGES:
        for code in range(low, high + 1):
            char = chr(code)
            base = _FOLD_SPECIAL.get(char) or "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            if base and base != char:
                table[code] = base
    return table


def normalise(text: str) -> str:
    """Lower case, ``ё`` -> ``е``; for non-ASCII text also NFKC (full-width letters, ligatures,
    the micro sign), accents of Latin and Greek letters folded and combining marks dropped."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKC", text).lower().replace(_CYR_YO, _CYR_IE)
    if _FOLDABLE.search(text):  # most Russian text has no such letter: skip the translation
        text = text.translate(_fold_table())
    return _COMBINING.sub("", text)


class Tokenizer:
    """Normalises a text (:func:`normalise`), splits it into Cyrillic words and other words
    (Latin letters and digits, Greek and other alphabets; a word mixing Cyrillic with another
    script becomes two words), drops English/Russian stop words, and stems each word with the
    Snowball stemmer of its script (English for the non-Cyrillic ones). One-character words are
    kept, as Lucene's standard analyzer keeps them: "vitamin D", "T cells", "Apollo 8"; the
    one-letter function words (a, в, и, к, с, ...) are stop words. Chinese, Japanese and Korean
    runs become overlapping character bigrams plus single characters (``東京都`` -> ``東京``,
    ``京都``, ``東``, ``京``, ``都``): rare bigrams carry the ranking, the characters (low idf)
    let a one-character word be found.

    Word order is not kept: BM25 needs a bag of words. Thread-safe (one stemmer pair per thread).
    Changing what it returns means a new :data:`TOKENIZER_VERSION`.
    """

    version = TOKENIZER_VERSION

    def __init__(self) -> None:
        self._local = threading.local()

    def _stemmers(self) -> tuple[Any, Any]:
        pair: tuple[Any, Any] | None = getattr(self._local, "stemmers", None)
        if pair is None:
            import Stemmer

            pair = (Stemmer.Stemmer("english"), Stemmer.Stemmer("russian"))
            self._local.stemmers = pair
        return pair

    def tokenize(self, text: str) -> list[str]:
        normal = normalise(text)
        stop = _stopwords()
        other = [w for w in _OTHER.findall(normal) if w not in stop]
        if normal.isascii():
            return list(self._stemmers()[0].stemWords(other))
        cyrillic = [w for w in _CYRILLIC.findall(normal) if w not in stop]
        english, russian = self._stemmers()
        tokens: list[str] = [*english.stemWords(other), *russian.stemWords(cyrillic)]
        tokens.extend(cjk_tokens(normal))
        return tokens


def cjk_tokens(text: str) -> list[str]:
    """Overlapping character bigrams, then the single characters, of every CJK run in ``text``."""
    out: list[str] = []
    for run in _CJK.findall(text):
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
        out.extend(run)
    return out


def script_counts(tokens: Sequence[str]) -> tuple[int, int]:
    """(Latin words, Cyrillic words) among tokens from :meth:`Tokenizer.tokenize`. A number has
    no language (as in :func:`embeddings.hybrid.text_language`, which counts letters), nor do
    Greek words or CJK bigrams: they count as neither."""
    cyrillic = sum(1 for t in tokens if "\u0400" <= t[0] <= "\u052f")
    latin = sum(1 for t in tokens if t.isascii() and not t.isdigit())
    return latin, cyrillic


@dataclass(frozen=True, eq=False)
class KeywordSegment:
    """An immutable inverted index over ``len(ids)`` chunks.

    Postings of term ``t`` are ``docs[indptr[t]:indptr[t+1]]`` (local document positions,
    ascending) with term frequencies ``tfs[...]``; ``doc_len[i]`` is the token count of chunk
    ``ids[i]``.
    """

    ids: IntArray
    doc_len: FloatArray
    terms: list[str]
    indptr: IntArray
    docs: NDArray[np.int32]
    tfs: FloatArray
    vocab: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocab", {t: i for i, t in enumerate(self.terms)})

    @property
    def size(self) -> int:
        return len(self.ids)

    def document_frequency(self, term: str) -> int:
        local = self.vocab.get(term)
        return 0 if local is None else int(self.indptr[local + 1] - self.indptr[local])

    @classmethod
    def build(cls, ids: Sequence[int], token_lists: Iterable[Sequence[str]]) -> KeywordSegment:
        vocab: dict[str, int] = {}
        term_ids: list[int] = []
        doc_pos: list[int] = []
        counts: list[int] = []
        lengths: list[int] = []
        for position, tokens in enumerate(token_lists):
            lengths.append(len(tokens))
            for term, count in Counter(tokens).items():
                term_ids.append(vocab.setdefault(term, len(vocab)))
                doc_pos.append(position)
                counts.append(count)
        if len(lengths) != len(ids):
            raise ValueError("one token list per id is required")
        return cls._from_triples(
            np.asarray(ids, dtype=np.int64),
            np.asarray(lengths, dtype=np.float32),
            list(vocab),
            np.asarray(term_ids, dtype=np.int64),
            np.asarray(doc_pos, dtype=np.int32),
            np.asarray(counts, dtype=np.float32),
        )

    @classmethod
    def _from_triples(
        cls,
        ids: IntArray,
        doc_len: FloatArray,
        terms: list[str],
        term_ids: IntArray,
        docs: NDArray[np.int32],
        tfs: FloatArray,
    ) -> KeywordSegment:
        order = np.argsort(term_ids, kind="stable")
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(term_ids, minlength=len(terms)), out=indptr[1:])
        return cls(ids, doc_len, terms, indptr, docs[order], tfs[order])

    @classmethod
    def merge(cls, parts: Sequence[tuple[KeywordSegment, NDArray[np.bool_]]]) -> KeywordSegment:
        """One segment holding the live chunks of ``parts`` (segment, live mask), in order."""
        union: dict[str, int] = {}
        all_terms: list[IntArray] = []
        all_docs: list[NDArray[np.int32]] = []
        all_tfs: list[FloatArray] = []
        ids: list[IntArray] = []
        lengths: list[FloatArray] = []
        offset = 0
        for segment, live in parts:
            remap = np.fromiter(
                (union.setdefault(t, len(union)) for t in segment.terms),
                dtype=np.int64,
                count=len(segment.terms),
            )
            posting_term = np.repeat(np.arange(len(segment.terms)), np.diff(segment.indptr))
            keep = live[segment.docs]
            new_pos = np.cumsum(live, dtype=np.int64) - 1 + offset
            all_terms.append(remap[posting_term[keep]])
            all_docs.append(new_pos[segment.docs[keep]].astype(np.int32))
            all_tfs.append(segment.tfs[keep])
            ids.append(segment.ids[live])
            lengths.append(segment.doc_len[live])
            offset += int(live.sum())
        if not parts:
            return cls.build([], [])
        # Terms whose every posting was deleted stay in the vocabulary with empty postings.
        return cls._from_triples(
            np.concatenate(ids),
            np.concatenate(lengths),
            list(union),
            np.concatenate(all_terms),
            np.concatenate(all_docs),
            np.concatenate(all_tfs),
        )

    def save(self, target: BinaryIO) -> None:
        blob = np.frombuffer("\n".join(self.terms).encode(), dtype=np.uint8)
        np.savez(
            target,
            ids=self.ids,
            doc_len=self.doc_len,
            terms=blob,
            n_terms=np.asarray([len(self.terms)]),
            indptr=self.indptr,
            docs=self.docs,
            tfs=self.tfs,
        )

    @classmethod
    def load(cls, source: BinaryIO | Path) -> KeywordSegment:
        with np.load(source, allow_pickle=False) as data:
            n_terms = int(data["n_terms"][0])
            terms = data["terms"].tobytes().decode().split("\n") if n_terms else []
            if len(terms) != n_terms:
                raise ValueError(f"vocabulary of {len(terms)} terms, expected {n_terms}")
            return cls(
                data["ids"].astype(np.int64),
                data["doc_len"].astype(np.float32),
                terms,
                data["indptr"].astype(np.int64),
                data["docs"].astype(np.int32),
                data["tfs"].astype(np.float32),
            )


@dataclass(frozen=True)
class KeywordView:
    """A segment as a search sees it: which of its chunks are live (not deleted)."""

    segment: KeywordSegment
    live: NDArray[np.bool_]
    live_count: int
    live_length: float


def view(segment: KeywordSegment, deleted: NDArray[np.int64] | None) -> KeywordView:
    live = np.ones(segment.size, dtype=bool)
    if deleted is not None and len(deleted):
        live &= ~np.isin(segment.ids, deleted)
    return KeywordView(segment, live, int(live.sum()), float(segment.doc_len[live].sum()))


def idf(n_docs: int, df: int) -> float:
    """Lucene's BM25 idf: never negative."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def search(
    views: Sequence[KeywordView],
    query_tokens: Sequence[str],
    top_k: int,
    allowed: NDArray[np.int64] | None = None,
) -> Ranking:
    """The ``top_k`` (chunk id, BM25 score) pairs with a positive score, best first, ties by id.

    Collection statistics (document count, mean length, document frequency) are those of all
    live chunks; ``allowed`` (sorted or not) restricts the result to those chunk ids.
    """
    n_docs = sum(v.live_count for v in views)
    if n_docs == 0 or not query_tokens or top_k <= 0:
        return Ranking()
    avgdl = sum(v.live_length for v in views) / n_docs
    # Document frequencies still count deleted chunks until their segment is merged (as in
    # Lucene), so the idf uses the same population, which keeps it positive.
    population = sum(v.segment.size for v in views)
    weights = {
        t: idf(population, sum(v.segment.document_frequency(t) for v in views))
        for t in set(query_tokens)
    }
    found_ids: list[IntArray] = []
    found_scores: list[FloatArray] = []
    for v in views:
        scored = _segment_scores(v.segment, query_tokens, weights, avgdl)
        if scored is None:
            continue
        positions, scores = scored  # every score is positive: idf > 0 and tf > 0
        ids = v.segment.ids[positions]
        keep: NDArray[np.bool_] | None = None
        if v.live_count < v.segment.size:
            keep = v.live[positions]
        if allowed is not None:
            in_allowed = np.isin(ids, allowed)
            keep = in_allowed if keep is None else keep & in_allowed
        if keep is not None:
            ids, scores = ids[keep], scores[keep]
        found_ids.append(ids)
        found_scores.append(scores)
    if not found_ids:
        return Ranking()
    if len(found_ids) == 1:
        return top_by_score(found_ids[0], found_scores[0], top_k)
    return top_by_score(np.concatenate(found_ids), np.concatenate(found_scores), top_k)


def _segment_scores(
    segment: KeywordSegment, query_tokens: Sequence[str], weights: dict[str, float], avgdl: float
) -> tuple[NDArray[Any], FloatArray] | None:
    """The chunks of ``segment`` (local positions) in which a query word occurs, and their
    scores; None when no query word is in the segment.

    All the query words' postings are scored in one pass of array operations. Each chunk's
    score is summed in float32 in the order of the query's words, as a loop over the words
    would: ``np.add.at`` adds in array order."""
    starts: list[int] = []
    ends: list[int] = []
    token_weights: list[float] = []
    for token in query_tokens:
        local = segment.vocab.get(token)
        if local is not None:
            starts.append(int(segment.indptr[local]))
            ends.append(int(segment.indptr[local + 1]))
            token_weights.append(weights[token])
    if not starts:
        return None
    lengths = np.subtract(ends, starts)
    total = int(lengths.sum())
    # Positions of every posting of every word: start of its word + offset within the word.
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    index = np.repeat(np.asarray(starts, dtype=np.int64), lengths) + offsets
    docs = segment.docs[index]
    tf = segment.tfs[index]
    weight = np.repeat(np.asarray(token_weights, dtype=np.float32), lengths)
    norm = np.float32(K1) * (np.float32(1.0 - B) + np.float32(B / avgdl) * segment.doc_len[docs])
    contributions = weight * tf / (tf + norm)
    if total * 8 >= segment.size:  # many postings: an array over the whole segment
        scores = np.zeros(segment.size, dtype=np.float32)
        np.add.at(scores, docs, contributions)
        (positions,) = np.nonzero(scores)
        return positions, scores[positions]
    unique = np.unique_inverse(docs)
    summed = np.zeros(len(unique.values), dtype=np.float32)
    np.add.at(summed, unique.inverse_indices, contributions)
    return unique.values, summed


class Ranking(Sequence[tuple[int, float]]):
    """A ranked list of (chunk id, score) pairs, kept as arrays (``ids``, ``scores``): fusion
    reads the arrays, and the Python pairs are built only when someone reads the list (100 of
    them cost ~15 us per list, per query). Immutable."""

    __slots__ = ("_pairs", "ids", "scores")

    def __init__(self, ids: IntArray | None = None, scores: NDArray[np.float64] | None = None):
        self.ids: IntArray = ids if ids is not None else np.zeros(0, dtype=np.int64)
        self.scores: NDArray[np.float64] = (
            scores if scores is not None else np.zeros(0, dtype=np.float64)
        )
        self._pairs: list[tuple[int, float]] | None = None

    @classmethod
    def of(cls, ids: IntArray, scores: NDArray[np.float64]) -> Ranking:
        if len(ids) != len(scores):
            raise ValueError("ids and scores differ in length")
        return cls(ids, scores)

    def arrays(self) -> tuple[IntArray, NDArray[np.float64]]:
        return self.ids, self.scores

    def _list(self) -> list[tuple[int, float]]:
        if self._pairs is None:
            self._pairs = list(zip(self.ids.tolist(), self.scores.tolist(), strict=True))
        return self._pairs

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> tuple[int, float]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[int, float]]: ...
    def __getitem__(self, index: int | slice) -> tuple[int, float] | list[tuple[int, float]]:
        return self._list()[index]

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self._list() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Ranking({self._list()!r})"


def top_by_score(ids: IntArray, scores: NDArray[Any], top_k: int) -> Ranking:
    """The ``top_k`` highest scores, ties broken by ascending id: a total, deterministic order."""
    if len(ids) > top_k:
        kth = np.partition(scores, len(scores) - top_k)[len(scores) - top_k]
        keep = scores >= kth
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:top_k]
    return Ranking.of(ids[order].astype(np.int64), scores[order].astype(np.float64))
