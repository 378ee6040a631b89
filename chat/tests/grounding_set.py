"""A deterministic test set for the grounding check (chat.grounding), built from real passages.

Passages: xquad-ru and xquad-en (``corpus.jsonl`` of /work/shared/testdata/retrieval, one
Wikipedia article per id prefix ``NN_``) and the UTF-8 text files of /work/shared/testdata/docs
(one document per file, a paragraph per passage). Each case gives the checker two passages (the
source and one of another article) and an answer of supported sentences, cited, each one copied
or lightly changed from the source (clauses reordered, some words dropped, a clause kept), plus
one planted unsupported sentence: a number of a source sentence changed, a name replaced by a
name from another article, or a sentence from a third article that is not given.

Plain Python (no Django), used by chat/tests/test_grounding.py and bench/eval_grounding.py.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from chat import grounding

TESTDATA = Path("/work/shared/testdata")
SOURCES = {
    "ru": (TESTDATA / "retrieval/xquad-ru/corpus.jsonl", ("ru_utf8.txt", "ru_moscow_utf8.txt")),
    "en": (TESTDATA / "retrieval/xquad-en/corpus.jsonl", ("en_utf8_bom.txt",)),
}
KINDS = ("number", "name", "foreign")
# Framing words a model adds around a fact (stems the passage usually lacks).
_FRAMES = {
    "ru": (
        "Согласно источнику, ",
        "В тексте отмечается, что ",
        "Как сообщается, ",
        "Примечательно, что ",
        "Стоит отметить, что ",
    ),
    "en": (
        "According to the source, ",
        "The text notes that ",
        "As reported, ",
        "Notably, ",
        "It is worth mentioning that ",
    ),
}
_NEUTRAL = {"ru": ("Итак:", "Да."), "en": ("In short:", "Yes.")}


@dataclass(frozen=True)
class Labelled:
    start: int
    end: int
    unsupported: bool
    kind: str  # "copy", "reorder", "drop", "clause", or a planted kind of KINDS, or "neutral"


@dataclass(frozen=True)
class Case:
    language: str
    answer: str
    passages: tuple[str, ...]
    parts: tuple[Labelled, ...]

    def label_at(self, offset: int) -> Labelled | None:
        for part in self.parts:
            if part.start <= offset < part.end:
                return part
        return None


@dataclass(frozen=True)
class _Passage:
    article: str
    text: str
    sentences: tuple[str, ...]


def available(language: str) -> bool:
    return SOURCES[language][0].is_file()


def _passages(language: str) -> list[_Passage]:
    corpus, docs = SOURCES[language]
    out: list[_Passage] = []
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            text = f"{row.get('title') or ''} {row['text']}".strip()
            out.append(_Passage(row["_id"].split("_")[0], text, _good_sentences(text)))
    for name in docs:
        path = TESTDATA / "docs/txt" / name
        if not path.is_file():
            continue
        for paragraph in re.split(r"\n\s*\n", path.read_text(encoding="utf-8-sig")):
            if len(paragraph.split()) >= 20:
                text = " ".join(paragraph.split())
                out.append(_Passage(f"doc:{name}", text, _good_sentences(text)))
    return out


def _good_sentences(text: str) -> tuple[str, ...]:
    """Sentences fit to build from: 7 to 45 words, ending with a full stop."""
    return tuple(
        s.text
        for s in grounding.split_sentences(text)
        if 7 <= len(s.text.split()) <= 45 and s.text.endswith(".")
    )


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _paraphrase(sentence: str, rng: random.Random) -> tuple[str, str]:
    """A light change of a source sentence that keeps its facts: (text, kind)."""
    body = sentence.rstrip(".")
    kind = rng.choice(("copy", "reorder", "drop", "clause"))
    if kind in ("reorder", "clause") and ", " in body:
        first, rest = body.split(", ", 1)
        if kind == "reorder":
            return f"{_upper_first(rest)}, {_lower_first(first)}.", kind
        if len(first.split()) >= 5:
            return f"{first}.", kind
    if kind == "drop":
        words = body.split()
        keep = [
            w
            for i, w in enumerate(words)
            if i == 0 or any(c.isdigit() or c.isupper() for c in w) or rng.random() > 0.25
        ]
        return " ".join(keep) + ".", kind
    return sentence, "copy"


def _change_number(sentence: str, forbidden: set[str], rng: random.Random) -> str | None:
    # Not a footnote of the source ("[14]"): the checker drops citation markers.
    found = list(re.finditer(r"(?<!\[)\d+(?!\])", sentence))
    rng.shuffle(found)
    for match in found:
        value = int(match.group())
        for delta in rng.sample((1, 2, 3, 5, 10, -1, -2), 7):
            new = str(value + delta)
            if value + delta >= 0 and new not in forbidden and len(new) == len(match.group()):
                return sentence[: match.start()] + new + sentence[match.end() :]
    return None


@cache
def _word_stems(word: str) -> frozenset[str]:
    return frozenset(grounding.stems(word))


@cache
def _name_words(sentence: str) -> tuple[str, ...]:
    words = re.findall(r"[^\W\d_]+", sentence)
    return tuple(w for w in words[1:] if w[0].isupper() and len(w) > 2 and _word_stems(w))


def _swap_name(
    sentence: str, forbidden: set[str], others: list[_Passage], rng: random.Random
) -> str | None:
    mine = _name_words(sentence)
    if not mine:
        return None
    target = rng.choice(mine)
    cyrillic = bool(re.search("[\u0400-\u04ff]", target))
    candidates = sorted(
        {
            w
            for p in others
            for s in p.sentences
            for w in _name_words(s)
            if bool(re.search("[\u0400-\u04ff]", w)) == cyrillic
            and not (_word_stems(w) & forbidden)
        }
    )
    if not candidates:
        return None
    return re.sub(rf"\b{re.escape(target)}\b", rng.choice(candidates), sentence)


def _cases(language: str, seed: int) -> Iterator[Case]:
    rng = random.Random(seed)
    pool = _passages(language)
    usable = [p for p in pool if len(p.sentences) >= 3]
    for n, source in enumerate(usable):
        others = [p for p in pool if p.article != source.article]
        distractor = rng.choice([p for p in others if p.sentences])
        # "Another document": a passage of the same article when there is one (same topic, so
        # many shared words), else of a third article; never one of the passages given.
        siblings = [
            p for p in pool if p.article == source.article and p is not source and p.sentences
        ]
        third = rng.choice(siblings or [p for p in others if p is not distractor and p.sentences])
        given = [source.text, distractor.text]
        rng.shuffle(given)
        cite = f" [{given.index(source.text) + 1}]"
        forbidden_stems = grounding.stems(source.text) | grounding.stems(distractor.text)
        forbidden_numbers = grounding.numbers(source.text) | grounding.numbers(distractor.text)
        picked = rng.sample(source.sentences, 3)
        supported = [_paraphrase(s, rng) for s in picked[:2]]
        if rng.random() < 0.5:  # one of them framed: "According to the source, ..."
            base, how = supported[0]
            frame = rng.choice(_FRAMES[language])
            supported[0] = (frame + _lower_first(base), f"{how}+frame")
        planted: tuple[str, str] | None = None
        text: str | None
        for kind in (KINDS[n % 3], *KINDS):
            if kind == "number":
                text = next(
                    (
                        c
                        for s in source.sentences
                        if (c := _change_number(s, forbidden_numbers, rng))
                    ),
                    None,
                )
            elif kind == "name":
                text = next(
                    (
                        c
                        for s in rng.sample(source.sentences, len(source.sentences))
                        if (c := _swap_name(s, forbidden_stems, others, rng))
                    ),
                    None,
                )
            else:
                text = rng.choice(third.sentences)
            if text:
                planted = (text, kind)
                break
        assert planted is not None
        items: list[tuple[str, str, bool]] = [(t, k, False) for t, k in supported]
        items.insert(rng.randrange(len(items) + 1), (planted[0], planted[1], True))
        if n % 4 == 0:
            items.insert(0, (_NEUTRAL[language][n % 8 // 4], "neutral", False))
        answer = ""
        parts: list[Labelled] = []
        for text, kind, unsupported in items:
            if answer:
                answer += "\n" if parts[-1].kind == "neutral" else " "
            marked = text if kind == "neutral" else text.rstrip(".") + cite + "."
            parts.append(Labelled(len(answer), len(answer) + len(marked), unsupported, kind))
            answer += marked
        yield Case(language, answer, tuple(given), tuple(parts))


@cache
def build_set(language: str, seed: int = 16) -> tuple[Case, ...]:
    """The cases of one language ("ru" or "en"), the same for the same seed."""
    return tuple(_cases(language, seed))


@dataclass(frozen=True)
class Scores:
    true_flags: int  # planted sentences flagged
    false_flags: int  # supported sentences flagged
    missed: int  # planted sentences not flagged
    counted: int

    @property
    def precision(self) -> float:
        flagged = self.true_flags + self.false_flags
        return self.true_flags / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        planted = self.true_flags + self.missed
        return self.true_flags / planted if planted else 1.0

    def __add__(self, other: Scores) -> Scores:
        return Scores(
            self.true_flags + other.true_flags,
            self.false_flags + other.false_flags,
            self.missed + other.missed,
            self.counted + other.counted,
        )


def evaluate(
    cases: tuple[Case, ...],
    *,
    encoder: grounding.SentenceEncoder | None = None,
    thresholds: grounding.Thresholds | None = None,
) -> Scores:
    """Precision and recall of the "unsupported" flag over the cases' counted sentences: each
    checked sentence takes the label of the built sentence its start falls in."""
    true_flags = false_flags = missed = counted = 0
    for case in cases:
        report = grounding.check(
            answer=case.answer, passages=case.passages, encoder=encoder, thresholds=thresholds
        )
        for sentence in report.sentences:
            label = case.label_at(sentence.start)
            if sentence.neutral or label is None:
                continue
            counted += 1
            flagged = sentence.supported is False
            if label.unsupported and flagged:
                true_flags += 1
            elif label.unsupported:
                missed += 1
            elif flagged:
                false_flags += 1
    return Scores(true_flags, false_flags, missed, counted)
