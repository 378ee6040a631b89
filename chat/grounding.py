"""The grounding check: is each sentence of an answer supported by a passage given to the model?

Plain Python (no Django): the chat pipeline calls :func:`check` with the answer text and the
passages of its context, and gets one :class:`SentenceCheck` per sentence plus the share of
supported sentences (:attr:`GroundingReport.supported_share`).

How a sentence is judged, against each passage in turn:

1. **Exact facts.** Every number of the sentence (``1799``, ``3.5``, ``3,5``) and every name (a
   capitalised word that does not open the sentence, stemmed: ``Эйнштейна`` -> ``эйнштейн``) must
   occur in the passage. A changed number or a name from elsewhere makes the sentence
   unsupported by that passage, however many other words it shares.
2. **Word overlap.** The share of the sentence's content stems (the product's BM25 tokenizer:
   stop words dropped, Snowball stems, Russian and English) found in the passage, at least
   :attr:`Thresholds.overlap`.
3. **Meaning** (when an encoder is given): a paraphrase sharing fewer stems is still supported
   when its cosine similarity with a sentence of the passage (or the whole passage) reaches
   :attr:`Thresholds.similarity` and its overlap :attr:`Thresholds.overlap_with_similarity`.

A sentence is supported when some passage supports it. Sentences with fewer than two content
words or numbers ("Yes.", "Итак:", a lone citation "[2]") are neutral: reported, not counted.

Thresholds were chosen with ``python bench/eval_grounding.py`` (see docs/EVALUATION.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from embeddings.keyword import Tokenizer

# A citation marker of the answer: [1], [2, 3], [1-3], [1–3].
CITATION = re.compile(r"\[\d+(?:\s*[,\u2013-]\s*\d+)*\]")
_ONLY_CITATIONS = re.compile(r"(?:\s*\[\d+(?:\s*[,\u2013-]\s*\d+)*\])+[\s.]*")
# A heading or list marker opening a line: "## ", "- ", "* ", "• ", "1. ", "2) ".
_LINE_MARKER = re.compile(r"^\s*(?:#{1,6}|[-*\u2022]|\d{1,3}[.)])\s+")
# A number: digits with decimal or thousands separators between digits (3.5, 3,5, 1,000).
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_]+")
# Sentences with fewer content tokens (stems and numbers) than this are neutral.
MIN_CONTENT = 2


class SentenceEncoder(Protocol):
    """What the check needs of an encoder (``embeddings.encoder.Encoder`` satisfies it): unit
    vectors, one row per text."""

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


@dataclass(frozen=True)
class Thresholds:
    overlap: float = 0.55
    similarity: float = 0.9
    overlap_with_similarity: float = 0.4


# Chosen by measurement (bench/eval_grounding.py, 1207 counted sentences, ru + en). Word overlap
# alone: precision and recall 1.000 for overlap 0.5-0.6 (0.4 misses same-article sentences, 0.7
# flags framed paraphrases), so 0.55. With an encoder: e5's cosines run high (unrelated Russian
# sentences reach 0.8), so a similarity of 0.8 lets same-article sentences through (recall 0.990);
# 0.9 with an overlap floor of 0.4 keeps 1.000/1.000 with MiniLM (en) and 1.000/0.995 (ru),
# 1.000/1.000 (en) with multilingual-e5-small.
STEM_ONLY = Thresholds(overlap=0.55)
WITH_ENCODER = Thresholds(overlap=0.55, similarity=0.9, overlap_with_similarity=0.4)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class SentenceCheck:
    """One sentence of the answer: ``answer[start:end] == text``.

    ``supported`` is None for a neutral sentence. ``passage`` is the index (into the passages
    given) of the supporting passage, else of the closest one, or None. ``missing`` lists the
    numbers and names of the sentence absent from that passage.
    """

    start: int
    end: int
    text: str
    supported: bool | None
    passage: int | None = None
    overlap: float = 0.0
    similarity: float | None = None
    missing: tuple[str, ...] = ()

    @property
    def neutral(self) -> bool:
        return self.supported is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "supported": self.supported,
            "passage": self.passage,
            "overlap": round(self.overlap, 3),
            "similarity": None if self.similarity is None else round(self.similarity, 3),
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class GroundingReport:
    sentences: tuple[SentenceCheck, ...] = field(default_factory=tuple)

    @property
    def counted(self) -> int:
        return sum(1 for s in self.sentences if not s.neutral)

    @property
    def supported(self) -> int:
        return sum(1 for s in self.sentences if s.supported)

    @property
    def supported_share(self) -> float | None:
        """Supported sentences / counted sentences; None when no sentence is counted."""
        return self.supported / self.counted if self.counted else None

    @property
    def unsupported(self) -> tuple[SentenceCheck, ...]:
        return tuple(s for s in self.sentences if s.supported is False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for an API response or an SSE event."""
        return {
            "supported_share": self.supported_share,
            "sentences": [s.as_dict() for s in self.sentences],
        }


@cache
def _tokenizer() -> Tokenizer:
    return Tokenizer()


def _sentenize(text: str) -> list[tuple[int, int]]:
    import razdel

    return [(s.start, s.stop) for s in razdel.sentenize(text)]


def split_sentences(text: str) -> list[Span]:
    """Sentences of ``text`` with their offsets, Russian and English.

    Every non-empty line is split on its own (a heading or a list item is a sentence); within a
    line razdel finds the boundaries (it knows abbreviations such as "т. е.", "e.g.", initials
    and decimals). A citation marker opening a sentence ("... end. [2] Next") belongs to the
    sentence before it on the same line; a line that is only citations joins the line above.
    """
    spans: list[list[int]] = []
    for line in re.finditer(r"[^\n]+", text):
        if not line.group().strip():
            continue
        base = line.start()
        first_of_line = True
        for start, end in _sentenize(line.group()):
            start, end = start + base, end + base
            lead = CITATION.match(text, start)
            while (
                lead
                and spans
                and (not first_of_line or _ONLY_CITATIONS.fullmatch(text, start, end))
            ):
                # Move the leading citation(s) to the sentence before.
                spans[-1][1] = lead.end()
                start = lead.end()
                while start < end and text[start].isspace():
                    start += 1
                lead = CITATION.match(text, start)
            if start < end:
                spans.append([start, end])
            first_of_line = False
    return [Span(s, e, text[s:e]) for s, e in spans]


def _plain(sentence: str) -> str:
    """The sentence without its citation markers and its heading/list marker."""
    return _LINE_MARKER.sub("", CITATION.sub(" ", sentence))


def numbers(text: str) -> set[str]:
    """Numbers of a text, decimal comma read as a point (``3,5`` == ``3.5``)."""
    return {n.replace(",", ".") for n in _NUMBER.findall(text)}


def stems(text: str) -> set[str]:
    """Content stems of a text (numbers left out: :func:`numbers` compares them exactly)."""
    return set(_tokenizer().tokenize(_NUMBER.sub(" ", text)))


def names(sentence: str) -> set[str]:
    """Stems of the capitalised words of a sentence other than its first word."""
    words = _WORD.findall(sentence)
    found: set[str] = set()
    for word in words[1:]:
        if word[0].isupper():
            found.update(_tokenizer().tokenize(word))
    return found


@dataclass(frozen=True)
class _Passage:
    stems: frozenset[str]
    numbers: frozenset[str]
    texts: tuple[str, ...]  # the passage, then its sentences: what the encoder compares with


def _prepare(passage: str) -> _Passage:
    sentences = tuple(_plain(s.text) for s in split_sentences(passage))
    return _Passage(
        stems=frozenset(stems(passage)),
        numbers=frozenset(numbers(passage)),
        texts=(passage, *sentences),
    )


def check(
    *,
    answer: str,
    passages: Sequence[str],
    encoder: SentenceEncoder | None = None,
    thresholds: Thresholds | None = None,
) -> GroundingReport:
    """Judge every sentence of ``answer`` against ``passages`` (the texts given to the model,
    in the order of their citation numbers). ``encoder`` (e.g. the knowledge base's) adds the
    meaning test; without it only exact facts and word overlap decide."""
    if thresholds is None:
        thresholds = WITH_ENCODER if encoder is not None else STEM_ONLY
    prepared = [_prepare(p) for p in passages]
    spans = split_sentences(answer)
    plains = [_plain(s.text) for s in spans]
    similarities = _similarities(encoder, plains, prepared) if encoder is not None else None
    results: list[SentenceCheck] = []
    for i, (span, plain) in enumerate(zip(spans, plains, strict=True)):
        sentence_stems = stems(plain)
        sentence_numbers = numbers(plain)
        if len(sentence_stems) + len(sentence_numbers) < MIN_CONTENT:
            results.append(SentenceCheck(span.start, span.end, span.text, None))
            continue
        facts = sentence_numbers | {f"name:{n}" for n in names(plain)}
        best: SentenceCheck | None = None
        best_key: tuple[bool, float] = (False, -1.0)
        for index, passage in enumerate(prepared):
            overlap = len(sentence_stems & passage.stems) / len(sentence_stems)
            missing = tuple(
                sorted(
                    f.removeprefix("name:")
                    for f in facts
                    if (f.startswith("name:") and f[5:] not in passage.stems)
                    or (not f.startswith("name:") and f not in passage.numbers)
                )
            )
            similarity = None if similarities is None else float(similarities[i][index])
            supported = not missing and (
                overlap >= thresholds.overlap
                or (
                    similarity is not None
                    and similarity >= thresholds.similarity
                    and overlap >= thresholds.overlap_with_similarity
                )
            )
            key = (supported, overlap + (similarity or 0.0) - len(missing))
            if key > best_key:
                best_key = key
                best = SentenceCheck(
                    span.start, span.end, span.text, supported, index, overlap, similarity, missing
                )
        results.append(best or SentenceCheck(span.start, span.end, span.text, False))
    return GroundingReport(tuple(results))


def _similarities(
    encoder: SentenceEncoder, sentences: Sequence[str], passages: Sequence[_Passage]
) -> list[list[float]]:
    """similarities[i][j]: the best cosine between sentence i and passage j or its sentences."""
    if not sentences or not passages:
        return [[0.0] * len(passages) for _ in sentences]
    texts = [t for p in passages for t in p.texts]
    vectors = encoder.encode([*sentences, *texts])
    sentence_vectors, text_vectors = vectors[: len(sentences)], vectors[len(sentences) :]
    cosines = sentence_vectors @ text_vectors.T
    out: list[list[float]] = [[] for _ in sentences]
    offset = 0
    for passage in passages:
        block = cosines[:, offset : offset + len(passage.texts)].max(axis=1)
        offset += len(passage.texts)
        for i, value in enumerate(block):
            out[i].append(float(value))
    return out


__all__ = [
    "CITATION",
    "GroundingReport",
    "SentenceCheck",
    "SentenceEncoder",
    "Span",
    "Thresholds",
    "check",
    "names",
    "numbers",
    "split_sentences",
    "stems",
]
