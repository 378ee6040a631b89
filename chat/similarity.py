"""The knowledge base's encoder as the offline provider's sentence similarity.

The offline (extractive) provider scores the sentences of the passages it is given by the
question's keywords and, when the caller passes one, by a
:data:`~providers.base.SentenceSimilarity` (issue 16, point 5; measured in docs/EVALUATION.md,
"Extractive answers": with multilingual-e5-small the quote holds the answer 0.940 (ru) / 0.947
(en) of the time against 0.813 / 0.907 with keywords alone). :func:`encoder_similarity` builds
that callable from the encoder of the knowledge base the passages came from: the question through
the query side and the cache of query vectors (the search embedded it already), the sentences
through the passage side.

Its cost is bounded: at most :data:`MAX_SENTENCES` sentences are encoded per answer (those of
the best passages; the rest score as the least similar of them), and any encoder error falls back
to the keywords alone (logged), never failing the answer. A model that does not know the
question's language (all-MiniLM-L6-v2 on a Russian question) is not asked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from documents.retrieval import query_vector, sentence_encoders
from embeddings.hybrid import knows, text_language
from providers.base import SentenceSimilarity

logger = logging.getLogger(__name__)

# ~25-50 sentences for 8 passages of 600-900 characters; 64 is one batch of the bundled
# multilingual engine (embeddings.multilingual.DEFAULT_BATCH_SIZE).
MAX_SENTENCES = 64


def encoder_similarity(*, model_name: str, question: str) -> SentenceSimilarity | None:
    """The cosine of ``question`` with each sentence by the encoder that made the vectors
    recorded as ``model_name``; ``None`` when there is none to ask (a provider's encoder, no
    model, or a model that does not know the question's language)."""
    encoders = sentence_encoders(model_name=model_name)
    if encoders is None:
        return None
    question_encoder, sentence_encoder = encoders
    if not knows(sentence_encoder.languages, text_language(question)):
        return None

    def similarity(text: str, sentences: Sequence[str]) -> list[float]:
        count = len(sentences)
        if count == 0:
            return []
        try:
            asked = query_vector(encoder=question_encoder, query=text)
            vectors = sentence_encoder.encode(list(sentences[:MAX_SENTENCES]))
            cosines = [float(c) for c in np.asarray(vectors) @ np.asarray(asked)]
        except Exception:
            logger.warning(
                "sentence similarity by %s failed: keywords only", model_name, exc_info=True
            )
            return [0.0] * count
        # Sentences past the cap (those of the weaker passages) count as the least similar.
        return cosines + [min(cosines)] * (count - len(cosines))

    return similarity


__all__ = ["MAX_SENTENCES", "encoder_similarity"]
