"""The local search backend's index lifecycle: one folder per knowledge base under
``INDEX_DIR`` with FAISS segments and BM25 postings (``embeddings.store``), kept in step with the
chunk rows. ``Chunk.vector`` is the source of truth; the files are a search structure rebuilt from
it whenever they are missing, damaged or built by another tokenizer version.

Reached through :class:`documents.retrieval.backend.LocalBackend`; callers use
:mod:`documents.retrieval`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import DatabaseError
from numpy.typing import NDArray

from documents.models import Chunk, Document, KnowledgeBase
from documents.retrieval.cache import cache_counts, encode_cached, text_sha256
from documents.retrieval.encoders import ENCODERS, encoder_for, encoder_kind, provider_errors
from documents.retrieval.errors import EmbeddingProviderUnavailable, ModelChanged
from documents.retrieval.hits import IndexStats, Progress
from embeddings import store
from embeddings.encoder import Encoder, Vectors
from embeddings.keyword import Tokenizer

logger = logging.getLogger(__name__)

# Chunks encoded, written and indexed per step, so that memory stays bounded for any document.
INDEX_BATCH = 512
# Chunk rows read, re-embedded where needed and handed to the new index per step of a rebuild.
REBUILD_BATCH = 2000
_tokenizer = Tokenizer()
# Serialises, within a process, the re-embedding of a knowledge base whose encoder changed.
_switch_lock = threading.Lock()


def tokenize(text: str) -> list[str]:
    """The BM25 tokens of ``text`` (see :class:`embeddings.keyword.Tokenizer`)."""
    return _tokenizer.tokenize(text)


# --- the index of a knowledge base -----------------------------------------------------------


def index_folder(kb_id: int) -> Path:
    """The folder of the knowledge base's index files."""
    return Path(settings.INDEX_DIR) / f"kb-{kb_id}"


def _index(kb_id: int) -> store.KnowledgeBaseIndex:
    return store.open_index(
        index_folder(kb_id), approximate_threshold=settings.APPROXIMATE_INDEX_THRESHOLD
    )


def _embed_text(chunk: Chunk, heading_context: bool) -> str:
    """What is encoded for a chunk: its text, after its heading path when the knowledge base
    asks for heading context (so "Payment terms > Penalties" shapes the vector)."""
    return _keyword_text(chunk) if heading_context else chunk.text


def _keyword_text(chunk: Chunk) -> str:
    if chunk.heading_path and chunk.heading_path not in chunk.text:
        return f"{chunk.heading_path}\n{chunk.text}"
    return chunk.text


def _claim_model(kb: KnowledgeBase, encoder: Encoder) -> None:
    """Record the encoder on ``kb``, unless ``kb`` already holds another model's vectors."""
    if (kb.embedding_model, kb.embedding_dimension) == (encoder.name, encoder.dimension):
        return
    if (
        kb.embedding_model
        and Chunk.objects.filter(knowledge_base=kb, vector__isnull=False).exists()
    ):
        raise ModelChanged(
            f"Knowledge base {kb.pk} was indexed with {kb.embedding_model} "
            f"({kb.embedding_dimension}-d), not {encoder.name}: run manage.py rebuild_index "
            f"--kb {kb.pk} to re-embed it.",
            {"knowledge_base_id": kb.pk, "model": kb.embedding_model},
        )
    kb.embedding_model = encoder.name
    kb.embedding_dimension = encoder.dimension
    KnowledgeBase.objects.filter(pk=kb.pk).update(
        embedding_model=encoder.name, embedding_dimension=encoder.dimension
    )


def _batches(items: Iterable[Chunk], size: int) -> Iterator[list[Chunk]]:
    batch: list[Chunk] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def index_chunks(
    *,
    knowledge_base: KnowledgeBase,
    chunks: Iterable[Chunk],
    batch_size: int = INDEX_BATCH,
    progress: Progress | None = None,
) -> int:
    """Embed saved ``chunks`` of ``knowledge_base`` (through the cache), store each vector in
    ``Chunk.vector`` and make them searchable (dense and keyword); returns how many.

    Works in batches of ``batch_size``, so ``chunks`` may be a lazy iterator of any length. Safe
    to run twice: a chunk indexed again replaces itself. The knowledge base's own encoder is
    used (:func:`encoder_for`); after its encoder was changed, the first call re-embeds the
    whole knowledge base (:func:`_switch_encoder`), telling ``progress`` (chunks re-embedded,
    chunks in all) after each batch. Raises :class:`ModelChanged` when the
    knowledge base holds vectors of another model of the same encoder,
    :class:`EncoderNotConfigured` and :class:`EmbeddingProviderError`.
    """
    encoder = encoder_for(knowledge_base=knowledge_base)
    with provider_errors(choice=knowledge_base.encoder):
        _switch_encoder(knowledge_base, encoder, progress)
        _claim_model(knowledge_base, encoder)
        return _index_batches(knowledge_base, encoder, chunks, batch_size)


def _switch_encoder(
    knowledge_base: KnowledgeBase, encoder: Encoder, progress: Progress | None = None
) -> None:
    """When the knowledge base's encoder was changed (say local to GigaChat) and it still holds
    vectors of the old one, re-embed all of its chunks with the new one and replace its index
    at once (search keeps the old index until then), so no index ever mixes two encoders.
    Another model of the same encoder (``EMBEDDING_MODEL`` changed) is left to
    :func:`_claim_model`, which asks the operator to rebuild."""

    if not switching(knowledge_base, encoder):
        return
    with _switch_lock:
        if switching(knowledge_base, encoder):
            logger.info(
                "knowledge base %s: re-embedding with %s (was %s)",
                knowledge_base.pk,
                encoder.name,
                knowledge_base.embedding_model,
            )
            try:
                rebuild_index(knowledge_base=knowledge_base, progress=progress)
            except Exception as exc:
                if isinstance(exc, (EmbeddingProviderUnavailable, DatabaseError)):
                    raise  # ingestion tries again; the switch stays requested
                _keep_old_encoder(knowledge_base, exc)
                raise


def switching(knowledge_base: KnowledgeBase, encoder: Encoder) -> bool:
    """Whether ``knowledge_base`` holds vectors of another encoder than ``encoder`` (not just
    another model of the same encoder): then it is re-embedded whole (both backends)."""
    knowledge_base.refresh_from_db(fields=["embedding_model", "embedding_dimension"])
    recorded = knowledge_base.embedding_model
    return bool(
        recorded
        and (recorded, knowledge_base.embedding_dimension) != (encoder.name, encoder.dimension)
        and encoder_kind(recorded) != encoder_kind(encoder.name)
        and Chunk.objects.filter(knowledge_base=knowledge_base, vector__isnull=False).exists()
    )


def _keep_old_encoder(knowledge_base: KnowledgeBase, exc: Exception) -> None:
    """A switch that cannot complete leaves the knowledge base on the encoder of its index
    (which kept serving): the choice goes back, and the reason is the document's failure."""
    old = encoder_kind(knowledge_base.embedding_model)
    logger.warning(
        "knowledge base %s: switch to %s failed (%s): staying on %s",
        knowledge_base.pk,
        knowledge_base.encoder,
        getattr(exc, "message", exc),
        old,
    )
    reason = str(getattr(exc, "message", "") or exc or type(exc).__name__)
    error = reason[:500]
    KnowledgeBase.objects.filter(pk=knowledge_base.pk).update(encoder=old, encoder_error=error)
    knowledge_base.encoder = old
    knowledge_base.encoder_error = error


def _index_batches(
    knowledge_base: KnowledgeBase, encoder: Encoder, chunks: Iterable[Chunk], batch_size: int
) -> int:
    index = _index(knowledge_base.pk)
    total = 0
    for batch in _batches(chunks, batch_size):
        vectors = encode_cached(
            encoder=encoder,
            texts=[_embed_text(c, knowledge_base.heading_context) for c in batch],
            batch_size=settings.EMBEDDING_BATCH_SIZE,
        )
        for chunk, vector in zip(batch, vectors, strict=True):
            chunk.vector = vector.tobytes()
            if not chunk.text_sha256:
                chunk.text_sha256 = text_sha256(chunk.text)
        Chunk.objects.bulk_update(batch, ["vector", "text_sha256"])
        ids = np.asarray([c.pk for c in batch], dtype=np.int64)
        tokens = [tokenize(_keyword_text(c)) for c in batch]
        try:
            index.add(ids, vectors, tokens, model=encoder.name, dimension=encoder.dimension)
        except (store.IndexCorrupt, store.ModelMismatch) as exc:
            # The vectors are in the database by now: the rebuild includes this batch.
            logger.warning(
                "index of knowledge base %s unusable (%s): rebuilding", knowledge_base.pk, exc
            )
            rebuild_index(knowledge_base=knowledge_base)
        total += len(batch)
    return total


def remove_chunks(*, knowledge_base: KnowledgeBase, chunk_ids: Sequence[int]) -> None:
    """Make these chunks unsearchable (their rows are the caller's business)."""
    index = _index(knowledge_base.pk)
    try:
        index.remove(np.asarray(chunk_ids, dtype=np.int64))
    except store.IndexCorrupt as exc:
        logger.warning(
            "index of knowledge base %s unusable (%s): rebuilding", knowledge_base.pk, exc
        )
        rebuild_index(knowledge_base=knowledge_base, exclude=chunk_ids)


def remove_document(*, knowledge_base: KnowledgeBase, document_id: int) -> int:
    """Make every chunk of the document unsearchable; returns how many. Call it before the
    chunk rows are deleted (it reads their ids); chunks whose rows are already gone never show
    up in results either, and leave the index at the next rebuild."""
    ids = list(
        Chunk.objects.filter(knowledge_base=knowledge_base, document_id=document_id).values_list(
            "id", flat=True
        )
    )
    if ids:
        remove_chunks(knowledge_base=knowledge_base, chunk_ids=ids)
    return len(ids)


def knowledge_base_index_delete(*, kb_id: int) -> None:
    """Delete the index files of a knowledge base that is being deleted."""
    folder = index_folder(kb_id)
    _index(kb_id).destroy()
    store.forget(folder)


def rebuild_index(
    *,
    knowledge_base: KnowledgeBase,
    exclude: Sequence[int] = (),
    progress: Progress | None = None,
) -> store.Snapshot:
    """Rebuild the knowledge base's index files from its chunk rows, re-embedding (through the
    cache, with the knowledge base's encoder) the chunks without a vector or with another
    model's; the old files serve searches until the new ones are complete, and the knowledge
    base records the new model only then; ``progress`` hears (chunks done, chunks in all) after
    each batch. Returns the new snapshot."""
    encoder = encoder_for(knowledge_base=knowledge_base)
    reembed = (knowledge_base.embedding_model, knowledge_base.embedding_dimension) != (
        encoder.name,
        encoder.dimension,
    )
    excluded = set(exclude)

    def batches() -> Iterator[tuple[NDArray[np.int64], Vectors, list[list[str]]]]:
        rows = (
            Chunk.objects.filter(knowledge_base=knowledge_base)
            .exclude(pk__in=excluded)
            .order_by("pk")
            .only("pk", "text", "heading_path", "vector", "text_sha256")
        )
        total = rows.count() if progress is not None else 0
        done = 0
        for batch in _batches(rows.iterator(chunk_size=REBUILD_BATCH), REBUILD_BATCH):
            yield _batch_vectors(batch, encoder, reembed, knowledge_base.heading_context)
            done += len(batch)
            if progress is not None:
                progress(done, max(total, done))

    with provider_errors(choice=knowledge_base.encoder):
        snapshot = _index(knowledge_base.pk).replace_all(
            batches(), model=encoder.name, dimension=encoder.dimension
        )
    if reembed:
        # Only now: until the new index is complete, the old one (and its model) serves.
        KnowledgeBase.objects.filter(pk=knowledge_base.pk).update(
            embedding_model=encoder.name, embedding_dimension=encoder.dimension, encoder_error=""
        )
        # Document vectors were the old model's: recomputed on demand (document_vectors).
        Document.objects.filter(knowledge_base=knowledge_base).update(vector=None)
        knowledge_base.embedding_model = encoder.name
        knowledge_base.embedding_dimension = encoder.dimension
    logger.info(
        "rebuilt the index of knowledge base %s: %s chunks", knowledge_base.pk, snapshot.count
    )
    return snapshot


def _batch_vectors(
    batch: list[Chunk], encoder: Encoder, reembed: bool, heading_context: bool
) -> tuple[NDArray[np.int64], Vectors, list[list[str]]]:
    dimension = encoder.dimension
    vectors = np.zeros((len(batch), dimension), dtype=np.float32)
    stale = []
    for row, chunk in enumerate(batch):
        stored = np.frombuffer(bytes(chunk.vector), dtype=np.float32) if chunk.vector else None
        if reembed or stored is None or stored.shape != (dimension,):
            stale.append(row)
        else:
            vectors[row] = stored
    if stale:
        fresh = encode_cached(
            encoder=encoder,
            texts=[_embed_text(batch[r], heading_context) for r in stale],
            batch_size=settings.EMBEDDING_BATCH_SIZE,
        )
        for row, vector in zip(stale, fresh, strict=True):
            vectors[row] = vector
            batch[row].vector = vector.tobytes()
        Chunk.objects.bulk_update([batch[r] for r in stale], ["vector"])
    ids = np.asarray([c.pk for c in batch], dtype=np.int64)
    return ids, vectors, [tokenize(_keyword_text(c)) for c in batch]


def index_stale_reason(*, knowledge_base: KnowledgeBase) -> str | None:
    """Why ``knowledge_base``'s index files must be rebuilt before they serve (missing while
    chunks have vectors, damaged, built by another tokenizer version), or None. Reads only the
    manifest, so that ``rebuild_index --stale`` can check every knowledge base at start-up."""
    index = _index(knowledge_base.pk)
    if not index.manifest_path.exists():
        if Chunk.objects.filter(knowledge_base=knowledge_base, vector__isnull=False).exists():
            return "missing"
        return None
    return index.stale_reason()


def snapshot(kb: KnowledgeBase) -> store.Snapshot:
    """The current index of ``kb``, rebuilt from the database when missing or damaged."""
    index = _index(kb.pk)
    try:
        snap = index.snapshot()
    except store.StaleIndex as exc:
        logger.warning("index of knowledge base %s is outdated (%s): rebuilding", kb.pk, exc)
        return rebuild_index(knowledge_base=kb)
    except store.IndexCorrupt as exc:
        logger.warning("index of knowledge base %s is damaged (%s): rebuilding", kb.pk, exc)
        return rebuild_index(knowledge_base=kb)
    if not snap.exists and Chunk.objects.filter(knowledge_base=kb, vector__isnull=False).exists():
        logger.warning("index of knowledge base %s is missing: rebuilding", kb.pk)
        return rebuild_index(knowledge_base=kb)
    return snap


# --- statistics -------------------------------------------------------------------------------


def index_stats(*, knowledge_base: KnowledgeBase) -> IndexStats:
    """Counts and sizes of the knowledge base's index, and its model's cache counters."""
    snap = snapshot(knowledge_base)
    folder = index_folder(knowledge_base.pk)
    manifest = snap.manifest
    file_bytes = sum(size for s in manifest.segments for size, _crc in s.files.values())
    kinds = sorted({s.kind for s in manifest.segments}) or ["flat"]
    model = (
        manifest.model
        or knowledge_base.embedding_model
        or (
            encoder_for(knowledge_base=knowledge_base).name
            if not ENCODERS[knowledge_base.encoder].provider
            else ""
        )
    )
    hits, misses, entries = cache_counts(model=model)
    if (folder / store.MANIFEST).exists():
        file_bytes += (folder / store.MANIFEST).stat().st_size
    return IndexStats(
        knowledge_base_id=knowledge_base.pk,
        count=snap.count,
        database_count=Chunk.objects.filter(
            knowledge_base=knowledge_base, vector__isnull=False
        ).count(),
        deleted=sum(len(s.deleted) for s in manifest.segments),
        segments=len(manifest.segments),
        model=model,
        dimension=manifest.dimension or knowledge_base.embedding_dimension,
        index_type="+".join(
            f"IndexIDMap2({'HNSWFlat' if k == 'hnsw' else 'FlatIP'})" for k in kinds
        ),
        file_bytes=file_bytes,
        version=snap.version,
        cache_hits=hits,
        cache_misses=misses,
        cache_entries=entries,
    )
