"""The postgres search backend's index lifecycle: the chunks' vectors in ``vector(N)`` columns
with an HNSW index (pgvector, inner product), their keywords in a generated ``tsvector`` column
with a GIN index, in the database that holds the chunk rows. ``Chunk.vector`` stays the source of
truth: every table here is rebuilt from it (``manage.py rebuild_index --backend postgres``), with
no re-encoding.

Layout (docs/ARCHITECTURE.md, "Search backends"):

- ``raggen_search_kb``: one row per knowledge base: the model and dimension of its vectors, and
  the keyword statistics BM25 needs (chunks, total length) and the hybrid language rule needs
  (Latin and Cyrillic tokens), kept in step by every write in the same transaction;
- ``raggen_search_chunk``: one row per searchable chunk: knowledge base, keyword text, its
  ``tsvector`` (generated, ``russian`` configuration) and its token count;
- ``raggen_search_vec_<N>``: one table per vector dimension, created on demand, each with its
  own HNSW index (``vector_ip_ops``).

A write (a document's chunks, a removal, a rebuild) is one transaction: a half-written document
is never searchable. Reached through :class:`PostgresBackend`; callers use
:mod:`documents.retrieval`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from documents.models import Chunk, Document, KnowledgeBase
from documents.retrieval import local, postgres_search
from documents.retrieval.cache import cache_counts, encode_cached, text_sha256
from documents.retrieval.encoders import ENCODERS, encoder_for, provider_errors
from documents.retrieval.errors import EmbeddingProviderUnavailable
from documents.retrieval.hits import IndexStats, Mode, Progress, Rebuilt, SearchResult
from documents.retrieval.local import (
    INDEX_BATCH,
    _batches,
    _claim_model,
    _embed_text,
    _keep_old_encoder,
    _keyword_text,
    _switch_lock,
    switching,
    tokenize,
)
from documents.retrieval.postgres_schema import (
    TS_CONFIG,
    check_database,
    ensure_schema,
    vector_literal,
    vector_table,
)
from embeddings.encoder import Encoder
from embeddings.keyword import script_counts

logger = logging.getLogger(__name__)

# --- writes: each in one transaction ------------------------------------------------------------


def _kb_row(kb_id: int, model: str, dimension: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO raggen_search_kb (kb_id, model, dimension) VALUES (%s, %s, %s) "
            "ON CONFLICT (kb_id) DO UPDATE SET model = excluded.model, "
            "dimension = excluded.dimension",
            [kb_id, model, dimension],
        )


def _delete_rows(kb_id: int, chunk_ids: Sequence[int] | None) -> int:
    """Delete chunks (all of the knowledge base's when ``chunk_ids`` is None) from every table,
    subtracting them from the knowledge base's statistics. Inside the caller's transaction."""
    where = "kb_id = %s" + ("" if chunk_ids is None else " AND chunk_id = ANY(%s)")
    params: list[int | list[int]] = [kb_id] if chunk_ids is None else [kb_id, list(chunk_ids)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'raggen\\_search\\_vec\\_%%'"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"DELETE FROM {table} WHERE {where}", params)
        cursor.execute(
            f"""WITH gone AS (DELETE FROM raggen_search_chunk WHERE {where}
                    RETURNING length, latin_tokens, cyrillic_tokens)
                UPDATE raggen_search_kb SET
                    chunks = chunks - (SELECT count(*) FROM gone),
                    total_length = total_length - (SELECT coalesce(sum(length), 0) FROM gone),
                    latin_tokens = latin_tokens
                        - (SELECT coalesce(sum(latin_tokens), 0) FROM gone),
                    cyrillic_tokens = cyrillic_tokens
                        - (SELECT coalesce(sum(cyrillic_tokens), 0) FROM gone),
                    version = version + 1
                WHERE kb_id = %s
                RETURNING (SELECT count(*) FROM gone)""",
            [*params, kb_id],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _insert_rows(kb_id: int, dimension: int, rows: Sequence[tuple[int, str, bytes]]) -> None:
    """Insert (chunk id, keyword text, float32 vector bytes) rows and add them to the knowledge
    base's statistics. Inside the caller's transaction. A row already there (another worker
    indexed the same chunk and committed first) is kept: both come from the same chunk row."""
    if not rows:
        return
    ids = [r[0] for r in rows]
    texts = [r[1] for r in rows]
    counts = [script_counts(tokenize(t)) for t in texts]
    vectors = [vector_literal(np.frombuffer(r[2], dtype=np.float32)) for r in rows]
    table = vector_table(dimension)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH added AS (
                    INSERT INTO raggen_search_chunk
                        (chunk_id, kb_id, keyword_text, length, latin_tokens, cyrillic_tokens)
                    SELECT r.id, %s, r.text,
                        (SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)
                         FROM unnest(to_tsvector('{TS_CONFIG}', r.text))),
                        r.latin, r.cyrillic
                    FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::int[])
                        AS r(id, text, latin, cyrillic)
                    ON CONFLICT (chunk_id) DO NOTHING
                    RETURNING length, latin_tokens, cyrillic_tokens)
                UPDATE raggen_search_kb SET
                    chunks = chunks + (SELECT count(*) FROM added),
                    total_length = total_length + (SELECT coalesce(sum(length), 0) FROM added),
                    latin_tokens = latin_tokens
                        + (SELECT coalesce(sum(latin_tokens), 0) FROM added),
                    cyrillic_tokens = cyrillic_tokens
                        + (SELECT coalesce(sum(cyrillic_tokens), 0) FROM added),
                    version = version + 1
                WHERE kb_id = %s""",
            [kb_id, ids, texts, [c[0] for c in counts], [c[1] for c in counts], kb_id],
        )
        cursor.execute(
            f"INSERT INTO {table} (chunk_id, kb_id, embedding) "
            "SELECT r.id, %s, r.v::vector FROM unnest(%s::bigint[], %s::text[]) AS r(id, v) "
            "ON CONFLICT (chunk_id) DO NOTHING",
            [kb_id, ids, vectors],
        )


def _write_chunks(kb_id: int, model: str, dimension: int, chunk_ids: Sequence[int]) -> None:
    """Make ``chunk_ids`` searchable from their rows' stored vectors, all of them in one
    transaction (replacing any earlier rows of theirs)."""
    ensure_schema(dimension)
    with transaction.atomic():
        _kb_row(kb_id, model, dimension)
        for part in range(0, len(chunk_ids), local.REBUILD_BATCH):
            ids = list(chunk_ids[part : part + local.REBUILD_BATCH])
            _delete_rows(kb_id, ids)
            _insert_rows(kb_id, dimension, _stored_rows(ids))


def _stored_rows(ids: Sequence[int]) -> list[tuple[int, str, bytes]]:
    chunks = Chunk.objects.filter(pk__in=ids, vector__isnull=False).only(
        "pk", "text", "heading_path", "vector"
    )
    return sorted((c.pk, _keyword_text(c), bytes(c.vector or b"")) for c in chunks)


# --- the lifecycle --------------------------------------------------------------------------


def index_chunks(
    *,
    knowledge_base: KnowledgeBase,
    chunks: Iterable[Chunk],
    batch_size: int = INDEX_BATCH,
    progress: Progress | None = None,
) -> int:
    """What :func:`documents.retrieval.index_chunks` says: the vectors are encoded (through the
    cache) and stored in ``Chunk.vector`` batch by batch, then all of them become searchable in
    one transaction."""
    check_database()
    encoder = encoder_for(knowledge_base=knowledge_base)
    with provider_errors(choice=knowledge_base.encoder):
        _switch_encoder(knowledge_base, encoder, progress)
        _claim_model(knowledge_base, encoder)
        ids: list[int] = []
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
            ids.extend(c.pk for c in batch)
    state = _state(knowledge_base.pk)
    if state is not None and (state[0], state[1]) != (encoder.name, encoder.dimension):
        # Rows of another model: the knowledge base is rebuilt whole, these chunks included.
        rebuild_index(knowledge_base=knowledge_base)
    else:
        _write_chunks(knowledge_base.pk, encoder.name, encoder.dimension, ids)
    return len(ids)


def _switch_encoder(
    knowledge_base: KnowledgeBase, encoder: Encoder, progress: Progress | None
) -> None:
    """As the local backend: a knowledge base whose encoder was changed is re-embedded whole
    (the old rows serve until the rebuild's transaction commits)."""
    if not switching(knowledge_base, encoder):
        return
    with _switch_lock:
        if switching(knowledge_base, encoder):
            try:
                rebuild_index(knowledge_base=knowledge_base, progress=progress)
            except Exception as exc:
                if isinstance(exc, (EmbeddingProviderUnavailable, DatabaseError)):
                    raise
                _keep_old_encoder(knowledge_base, exc)
                raise


def remove_chunks(*, knowledge_base: KnowledgeBase, chunk_ids: Sequence[int]) -> None:
    check_database()
    if _state(knowledge_base.pk) is None:
        return
    with transaction.atomic():
        _delete_rows(knowledge_base.pk, list(chunk_ids))


def remove_document(*, knowledge_base: KnowledgeBase, document_id: int) -> int:
    ids = list(
        Chunk.objects.filter(knowledge_base=knowledge_base, document_id=document_id).values_list(
            "id", flat=True
        )
    )
    if ids:
        remove_chunks(knowledge_base=knowledge_base, chunk_ids=ids)
    return len(ids)


def delete_knowledge_base(*, kb_id: int) -> None:
    check_database()
    if _state(kb_id) is None:
        return
    with transaction.atomic():
        _delete_rows(kb_id, None)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM raggen_search_kb WHERE kb_id = %s", [kb_id])


def rebuild_index(
    *,
    knowledge_base: KnowledgeBase,
    exclude: Sequence[int] = (),
    progress: Progress | None = None,
) -> Rebuilt:
    """The knowledge base's rows replaced, in one transaction, by its chunk rows' stored
    vectors; chunks without a vector, or with another model's, are embedded first (through the
    cache; outside the transaction). Returns what is searchable now."""
    check_database()
    encoder = encoder_for(knowledge_base=knowledge_base)
    reembed = (knowledge_base.embedding_model, knowledge_base.embedding_dimension) != (
        encoder.name,
        encoder.dimension,
    )
    excluded = set(exclude)
    rows = (
        Chunk.objects.filter(knowledge_base=knowledge_base)
        .exclude(pk__in=excluded)
        .order_by("pk")
        .only("pk", "text", "heading_path", "vector")
    )
    total = rows.count()
    done = 0
    ids: list[int] = []
    with provider_errors(choice=knowledge_base.encoder):
        for batch in _batches(rows.iterator(chunk_size=local.REBUILD_BATCH), local.REBUILD_BATCH):
            stale = [
                c
                for c in batch
                if reembed or not c.vector or len(bytes(c.vector)) != 4 * encoder.dimension
            ]
            if stale:
                fresh = encode_cached(
                    encoder=encoder,
                    texts=[_embed_text(c, knowledge_base.heading_context) for c in stale],
                    batch_size=settings.EMBEDDING_BATCH_SIZE,
                )
                for chunk, vector in zip(stale, fresh, strict=True):
                    chunk.vector = vector.tobytes()
                Chunk.objects.bulk_update(stale, ["vector"])
            ids.extend(c.pk for c in batch)
            done += len(batch)
            if progress is not None:
                progress(done, max(total, done))
    ensure_schema(encoder.dimension)
    with transaction.atomic():
        _delete_rows(knowledge_base.pk, None)
        _kb_row(knowledge_base.pk, encoder.name, encoder.dimension)
        for part in range(0, len(ids), local.REBUILD_BATCH):
            _insert_rows(
                knowledge_base.pk,
                encoder.dimension,
                _stored_rows(ids[part : part + local.REBUILD_BATCH]),
            )
        if reembed:
            KnowledgeBase.objects.filter(pk=knowledge_base.pk).update(
                embedding_model=encoder.name,
                embedding_dimension=encoder.dimension,
                encoder_error="",
            )
            Document.objects.filter(knowledge_base=knowledge_base).update(vector=None)
    if reembed:
        knowledge_base.embedding_model = encoder.name
        knowledge_base.embedding_dimension = encoder.dimension
    state = _state(knowledge_base.pk)
    version = state[3] if state else 0
    logger.info("rebuilt knowledge base %s in postgres: %s chunks", knowledge_base.pk, len(ids))
    return Rebuilt(len(ids), encoder.name, encoder.dimension, version)


def _state(kb_id: int) -> tuple[str, int, int, int] | None:
    """(model, dimension, chunks, version) of a knowledge base, or None when it has no row."""
    ensure_schema()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model, dimension, chunks, version FROM raggen_search_kb WHERE kb_id = %s",
            [kb_id],
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], int(row[1]), int(row[2]), int(row[3]))


def stale_reason(*, knowledge_base: KnowledgeBase) -> str | None:
    """ "missing" when the knowledge base has no rows here while its chunks have vectors (say,
    after a switch from the local backend), otherwise None."""
    if _state(knowledge_base.pk) is None and (
        Chunk.objects.filter(knowledge_base=knowledge_base, vector__isnull=False).exists()
    ):
        return "missing"
    return None


def index_stats(*, knowledge_base: KnowledgeBase) -> IndexStats:
    state = _state(knowledge_base.pk) or ("", 0, 0, 0)
    model = (
        state[0]
        or knowledge_base.embedding_model
        or (
            encoder_for(knowledge_base=knowledge_base).name
            if not ENCODERS[knowledge_base.encoder].provider
            else ""
        )
    )
    hits, misses, entries = cache_counts(model=model)
    return IndexStats(
        knowledge_base_id=knowledge_base.pk,
        count=state[2],
        database_count=Chunk.objects.filter(
            knowledge_base=knowledge_base, vector__isnull=False
        ).count(),
        deleted=0,
        segments=0,
        model=model,
        dimension=state[1] or knowledge_base.embedding_dimension,
        index_type="pgvector HNSW (vector_ip_ops) + tsvector GIN",
        file_bytes=storage_bytes(kb_id=knowledge_base.pk),
        version=state[3],
        cache_hits=hits,
        cache_misses=misses,
        cache_entries=entries,
    )


def storage_bytes(*, kb_id: int) -> int:
    """The bytes of the knowledge base's rows (indexes excluded: they are shared)."""
    state = _state(kb_id)
    if state is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM raggen_search_chunk c "
            "WHERE kb_id = %s",
            [kb_id],
        )
        size = int(cursor.fetchone()[0])
        if state[1]:
            cursor.execute(
                f"SELECT coalesce(sum(pg_column_size(v.*)), 0) FROM {vector_table(state[1])} v "
                "WHERE kb_id = %s",
                [kb_id],
            )
            size += int(cursor.fetchone()[0])
    return size


class PostgresBackend:
    """Vectors (pgvector HNSW) and keywords (PostgreSQL full-text search, BM25-weighted) in the
    database beside the chunk rows; fused as the local backend fuses
    (:mod:`documents.retrieval.postgres_search`)."""

    name = "postgres"

    def __init__(self) -> None:
        check_database()

    def index_chunks(
        self,
        *,
        knowledge_base: KnowledgeBase,
        chunks: Iterable[Chunk],
        batch_size: int,
        progress: Progress | None = None,
    ) -> int:
        return index_chunks(
            knowledge_base=knowledge_base, chunks=chunks, batch_size=batch_size, progress=progress
        )

    def remove_chunks(self, *, knowledge_base: KnowledgeBase, chunk_ids: Sequence[int]) -> None:
        remove_chunks(knowledge_base=knowledge_base, chunk_ids=chunk_ids)

    def remove_document(self, *, knowledge_base: KnowledgeBase, document_id: int) -> int:
        return remove_document(knowledge_base=knowledge_base, document_id=document_id)

    def delete_knowledge_base(self, *, kb_id: int) -> None:
        delete_knowledge_base(kb_id=kb_id)

    def rebuild(self, *, knowledge_base: KnowledgeBase, exclude: Sequence[int] = ()) -> Rebuilt:
        return rebuild_index(knowledge_base=knowledge_base, exclude=exclude)

    def stale_reason(self, *, knowledge_base: KnowledgeBase) -> str | None:
        return stale_reason(knowledge_base=knowledge_base)

    def search(
        self,
        *,
        knowledge_bases: Sequence[KnowledgeBase],
        query: str,
        mode: Mode,
        top_k: int,
        min_score: float | None,
        dense_weight: float | None,
        keyword_weight: float | None,
        document_ids: Sequence[int] | None,
        file_types: Sequence[str] | None,
        candidates: int,
        query_vector: Sequence[float] | None,
        fusion: str,
    ) -> SearchResult:
        ensure_schema()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT kb_id FROM raggen_search_kb WHERE kb_id = ANY(%s)",
                [[kb.pk for kb in knowledge_bases]],
            )
            present = {row[0] for row in cursor.fetchall()}
        for kb in knowledge_bases:
            if kb.pk not in present and stale_reason(knowledge_base=kb) == "missing":
                logger.warning("knowledge base %s has no postgres rows: rebuilding", kb.pk)
                rebuild_index(knowledge_base=kb)
        return postgres_search.search(
            knowledge_bases=knowledge_bases,
            query=query,
            mode=mode,
            top_k=top_k,
            min_score=min_score,
            dense_weight=dense_weight,
            keyword_weight=keyword_weight,
            document_ids=document_ids,
            file_types=file_types,
            candidates=candidates,
            query_vector=query_vector,
            fusion=fusion,
        )

    def stats(self, *, knowledge_base: KnowledgeBase) -> IndexStats:
        return index_stats(knowledge_base=knowledge_base)

    def storage_bytes(self, *, kb_id: int) -> int:
        return storage_bytes(kb_id=kb_id)
