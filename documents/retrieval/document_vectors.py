"""Document vectors: a document's chunk vectors aggregated into one (the knowledge base's
``aggregation``: mean, weighted by length, or by position decay), stored in
``Document.vector``, and the documents of a knowledge base most similar to one of them.

Both stream: chunk vectors are read from the database in batches of :data:`BATCH` rows and
folded into a running weighted sum; document vectors are scanned in batches, keeping only the
best ``top_k``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from django.utils.translation import gettext as _
from numpy.typing import NDArray

from core.errors import Conflict
from documents.models import Chunk, Document, DocumentStatus, KnowledgeBase
from embeddings.aggregation import RunningAggregate

BATCH = 512


@dataclass(frozen=True)
class DocumentVector:
    document_id: int
    model: str
    dimension: int
    aggregation: str
    vector: NDArray[np.float32]


@dataclass(frozen=True)
class SimilarDocument:
    document_id: int
    title: str
    file_type: str
    score: float


def _batches(
    rows: Iterable[tuple[bytes | memoryview | None, int]],
) -> Iterator[tuple[NDArray[np.float32], list[int]]]:
    blobs: list[bytes] = []
    lengths: list[int] = []
    size: int | None = None
    for blob, length in rows:
        if blob is None:
            continue
        data = bytes(blob)
        size = len(data) if size is None else size
        if len(data) != size:  # another model's vector (a reindex is under way): skip it
            continue
        blobs.append(data)
        lengths.append(length)
        if len(blobs) == BATCH:
            yield np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(BATCH, -1), lengths
            blobs, lengths = [], []
    if blobs:
        yield np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1), lengths


def document_vector_compute(
    *, document: Document, store: bool = True
) -> NDArray[np.float32] | None:
    """The aggregate of ``document``'s chunk vectors (in chunk order) by its knowledge base's
    ``aggregation``, stored in ``Document.vector`` unless ``store`` is false (ingestion stores
    it itself, with the status); None (and stored as NULL) when no chunk has a vector. Holds at
    most :data:`BATCH` chunk vectors at a time."""
    method = KnowledgeBase.objects.values_list("aggregation", flat=True).get(
        pk=document.knowledge_base_id
    )
    running = RunningAggregate(method)
    rows = (
        Chunk.objects.filter(document_id=document.pk)
        .order_by("ordinal")
        .values_list("vector", "token_count")
        .iterator(chunk_size=BATCH)
    )
    for vectors, lengths in _batches(rows):
        running.add(vectors, lengths=lengths)
    vector = running.result()
    if store:
        Document.objects.filter(pk=document.pk).update(
            vector=None if vector is None else vector.tobytes()
        )
    return vector


def document_vector_get(*, document: Document) -> DocumentVector:
    """``document``'s stored vector, computed now if missing (a document indexed before
    document vectors existed, or added through the vector API). Raises :class:`Conflict` while
    the document is not indexed or has no vectors."""
    if document.status != DocumentStatus.INDEXED:
        raise Conflict(_("The document is not indexed yet."), {"status": document.status})
    kb = KnowledgeBase.objects.only("embedding_model", "embedding_dimension", "aggregation").get(
        pk=document.knowledge_base_id
    )
    blob = Document.objects.values_list("vector", flat=True).get(pk=document.pk)
    vector = (
        np.frombuffer(bytes(blob), dtype=np.float32)
        if blob is not None
        else document_vector_compute(document=document)
    )
    if vector is None or (kb.embedding_dimension and len(vector) != kb.embedding_dimension):
        # Stale (the knowledge base was re-indexed with another model): compute it again.
        vector = document_vector_compute(document=document)
    if vector is None:
        raise Conflict(_("The document has no vectors."))
    return DocumentVector(document.pk, kb.embedding_model, len(vector), kb.aggregation, vector)


def similar_documents(
    *, document: Document, top_k: int = 10, knowledge_base: KnowledgeBase | None = None
) -> list[SimilarDocument]:
    """The ``top_k`` current, indexed documents of ``knowledge_base`` (default: the document's
    own) whose document vectors are closest (cosine) to ``document``'s, best first, ties by id;
    ``document`` itself is left out, and so are documents without chunk vectors or whose
    vector has another dimension."""
    target = document_vector_get(document=document).vector
    kb_id = knowledge_base.pk if knowledge_base is not None else document.knowledge_base_id
    # Documents without a vector yet (added through the vector API, indexed before document
    # vectors existed, or re-embedded with another model) get one now, once.
    for missing in Document.objects.filter(
        knowledge_base_id=kb_id, status=DocumentStatus.INDEXED, is_current=True, vector__isnull=True
    ).only("pk", "knowledge_base_id"):
        document_vector_compute(document=missing)
    rows = (
        Document.objects.filter(
            knowledge_base_id=kb_id,
            status=DocumentStatus.INDEXED,
            is_current=True,
            vector__isnull=False,
        )
        .exclude(pk=document.pk)
        .order_by("pk")
        .values_list("pk", "vector")
        .iterator(chunk_size=BATCH)
    )
    best_ids = np.zeros(0, dtype=np.int64)
    best_scores = np.zeros(0, dtype=np.float32)
    ids: list[int] = []
    blobs: list[bytes] = []
    expected = target.nbytes

    def fold() -> None:
        nonlocal best_ids, best_scores
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
        all_ids = np.concatenate([best_ids, np.asarray(ids, dtype=np.int64)])
        all_scores = np.concatenate([best_scores, matrix @ target])
        order = np.lexsort((all_ids, -all_scores))[:top_k]
        best_ids, best_scores = all_ids[order], all_scores[order]
        ids.clear()
        blobs.clear()

    for pk, blob in rows:
        data = bytes(blob) if blob is not None else b""
        if len(data) != expected:
            continue
        ids.append(pk)
        blobs.append(data)
        if len(blobs) == BATCH:
            fold()
    if blobs:
        fold()
    titles = Document.objects.only("title", "file_type").in_bulk(best_ids.tolist())
    return [
        SimilarDocument(pk, titles[pk].title, titles[pk].file_type, float(score))
        for pk, score in zip(best_ids.tolist(), best_scores.tolist(), strict=True)
        if pk in titles
    ]
