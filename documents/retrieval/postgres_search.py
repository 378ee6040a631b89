"""Search on the postgres backend: the dense side is pgvector's HNSW index (inner product on
unit vectors: the cosine), the keyword side BM25 over PostgreSQL full-text search (the
``tsvector`` lexemes, with Lucene's idf and the local backend's k1/b per knowledge base), fused
by ``embeddings.hybrid`` exactly as the local backend fuses, hydrated by
:func:`documents.retrieval.hits.hits_hydrate`.

Reached through :class:`documents.retrieval.postgres.PostgresBackend`; callers use
:func:`documents.retrieval.search`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext as _

from core.errors import InvalidInput
from documents.models import KnowledgeBase
from documents.retrieval.encoders import provider_errors, query_encoders
from documents.retrieval.encoders import query_vector as embed_query
from documents.retrieval.errors import EmbeddingProviderError
from documents.retrieval.hits import MODES, Mode, SearchResult, hits_hydrate
from documents.retrieval.local_search import CANDIDATES, _allowed_ids, _given_vector, _merge_lists
from documents.retrieval.postgres_schema import TS_CONFIG, vector_literal, vector_table
from embeddings import hybrid
from embeddings.encoder import ANY_LANGUAGE, Encoder, Vectors
from embeddings.keyword import K1, B

#: pgvector's ``hnsw.ef_search`` ceiling.
_EF_SEARCH_MAX = 1000


@dataclass(frozen=True)
class _State:
    """A knowledge base's row of ``raggen_search_kb``."""

    model: str
    dimension: int
    chunks: int
    latin_tokens: int
    cyrillic_tokens: int


def _states(kb_ids: Sequence[int]) -> dict[int, _State]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kb_id, model, dimension, chunks, latin_tokens, cyrillic_tokens "
            "FROM raggen_search_kb WHERE kb_id = ANY(%s)",
            [list(kb_ids)],
        )
        return {
            int(row[0]): _State(row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5]))
            for row in cursor.fetchall()
        }


def search(
    *,
    knowledge_bases: Sequence[KnowledgeBase],
    query: str,
    mode: Mode = "hybrid",
    top_k: int = 10,
    min_score: float | None = None,
    dense_weight: float | None = None,
    keyword_weight: float | None = None,
    document_ids: Sequence[int] | None = None,
    file_types: Sequence[str] | None = None,
    candidates: int = CANDIDATES,
    query_vector: Sequence[float] | None = None,
    fusion: str = "convex",
) -> SearchResult:
    """The postgres backend's search: what :func:`documents.retrieval.search` documents (the
    one description of the parameters), on the knowledge bases' rows in PostgreSQL."""
    if mode not in MODES:
        raise InvalidInput(
            _("Unknown search mode %(mode)r: use dense, keyword or hybrid.") % {"mode": mode}
        )
    if fusion not in hybrid.FUSIONS:
        raise InvalidInput(_("Unknown fusion %(fusion)r: use convex or rrf.") % {"fusion": fusion})
    if not query.strip() and (query_vector is None or mode != "dense"):
        raise InvalidInput(_("The query is empty."))
    if not knowledge_bases:
        return SearchResult([], mode, 0.0, 0.0, [])
    states = _states([kb.pk for kb in knowledge_bases])
    notes: list[str] = []
    encoders = (
        query_encoders(knowledge_bases=list(knowledge_bases), notes=notes)
        if query_vector is None
        else {}
    )
    first = encoders.get(knowledge_bases[0].pk)
    languages = first.languages if first is not None else frozenset({ANY_LANGUAGE})
    weights = _weights(
        knowledge_bases, mode, query, dense_weight, keyword_weight, states, languages
    )
    if weights.reason:
        notes.insert(0, weights.reason)
    allowed = _allowed_ids(knowledge_bases, document_ids, file_types)
    allowed_list = None if allowed is None else allowed.tolist()
    pool = max(candidates, top_k)
    dense_ranked: Sequence[tuple[int, float]] = []
    keyword_ranked: Sequence[tuple[int, float]] = []
    if mode == "dense" or (mode == "hybrid" and weights.dense > 0):
        dense_ranked = _dense_side(
            knowledge_bases,
            states,
            encoders,
            query,
            _given_vector(query_vector),
            pool,
            allowed_list,
            notes,
            strict=mode == "dense",
        )
    if mode == "keyword" or (mode == "hybrid" and weights.keyword > 0):
        keyword_ranked = _keyword_side(
            [kb.pk for kb in knowledge_bases if kb.pk in states], query, pool, allowed_list
        )
    if mode == "hybrid":
        limit = 2 * top_k + 20
        fused = hybrid.fuse(dense_ranked, keyword_ranked, weights, method=fusion, limit=limit)
    else:
        fused = hybrid.single(dense_ranked if mode == "dense" else keyword_ranked, side=mode)
    if min_score is not None:
        fused = [h for h in fused if h.score >= min_score]
    hits = hits_hydrate(ranked=fused, top_k=top_k, fused_scores=mode == "hybrid")
    return SearchResult(hits, mode, weights.dense, weights.keyword, notes)


def _weights(
    kbs: Sequence[KnowledgeBase],
    mode: Mode,
    query: str,
    dense_weight: float | None,
    keyword_weight: float | None,
    states: dict[int, _State],
    encoder_languages: frozenset[str],
) -> hybrid.Weights:
    dense = kbs[0].dense_weight if dense_weight is None else dense_weight
    keyword = kbs[0].keyword_weight if keyword_weight is None else keyword_weight
    if mode != "hybrid":
        return hybrid.Weights(dense, keyword)
    empty = _State("", 0, 0, 0, 0)
    return hybrid.effective_weights(
        dense,
        keyword,
        query_language=hybrid.text_language(query),
        corpus_languages=[
            hybrid.corpus_language(
                states.get(kb.pk, empty).latin_tokens, states.get(kb.pk, empty).cyrillic_tokens
            )
            for kb in kbs
        ],
        encoder_languages=encoder_languages,
    )


def _dense_side(
    kbs: Sequence[KnowledgeBase],
    states: dict[int, _State],
    encoders: dict[int, Encoder | None],
    query: str,
    given: Vectors | None,
    pool: int,
    allowed: list[int] | None,
    notes: list[str],
    *,
    strict: bool,
) -> Sequence[tuple[int, float]]:
    """Each knowledge base's nearest chunks, embedded by its own query encoder, as the local
    backend's dense side (the same notes, the same errors)."""
    lists = []
    for kb in kbs:
        state = states.get(kb.pk)
        encoder = encoders.get(kb.pk)
        if state is None or not state.chunks:
            continue
        if given is not None:
            if len(given) != state.dimension:
                raise InvalidInput(
                    _(
                        "The query vector has %(count)s dimensions; knowledge base %(id)s "
                        "holds %(dimension)s-dimensional vectors."
                    )
                    % {"count": len(given), "id": kb.pk, "dimension": state.dimension},
                    {"expected_dimension": state.dimension},
                )
            lists.append(nearest(kb.pk, state.dimension, given, pool, allowed))
        elif encoder is None:
            continue
        elif (state.model, state.dimension) == (encoder.name, encoder.dimension):
            try:
                with provider_errors(choice=kb.encoder):
                    vector = embed_query(encoder=encoder, query=query)
            except EmbeddingProviderError as exc:
                if strict:
                    raise
                notes.append(f"dense search of knowledge base {kb.pk} skipped: {exc.message}")
                continue
            lists.append(nearest(kb.pk, state.dimension, vector, pool, allowed))
        else:
            notes.append(
                f"knowledge base {kb.pk} was indexed with {state.model}: dense search "
                "skipped until it is rebuilt"
            )
    return _merge_lists(lists, pool)


def nearest(
    kb_id: int,
    dimension: int,
    vector: Vectors,
    limit: int,
    allowed: list[int] | None,
    *,
    exact: bool = False,
) -> list[tuple[int, float]]:
    """The knowledge base's ``limit`` chunks of highest inner product with ``vector``, best
    first, ties by chunk id: through the HNSW index (``hnsw.ef_search`` from
    ``PGVECTOR_EF_SEARCH``, at least ``limit``; iterative scans so that filters still fill the
    list), or by an exact scan when ``exact``."""
    table = vector_table(dimension)
    literal = vector_literal(vector)
    where = "kb_id = %s" + ("" if allowed is None else " AND chunk_id = ANY(%s)")
    params: list[int | list[int]] = [kb_id] if allowed is None else [kb_id, allowed]
    with transaction.atomic(), connection.cursor() as cursor:
        if exact:
            cursor.execute("SET LOCAL enable_indexscan = off")
        else:
            ef = min(max(int(settings.PGVECTOR_EF_SEARCH), limit), _EF_SEARCH_MAX)
            cursor.execute(f"SET LOCAL hnsw.ef_search = {ef}")
            cursor.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        cursor.execute(
            f"SELECT chunk_id, -(embedding <#> %s::vector) FROM {table} WHERE {where} "
            "ORDER BY embedding <#> %s::vector LIMIT %s",
            [literal, *params, literal, limit],
        )
        rows = [(int(i), float(s)) for i, s in cursor.fetchall()]
    rows.sort(key=lambda p: (-p[1], p[0]))
    return rows


_KEYWORD_SQL = """
WITH q AS (
    SELECT lexeme, coalesce(array_length(positions, 1), 1) AS qtf
    FROM unnest(to_tsvector('{config}', %(query)s))
),
m AS (
    SELECT c.chunk_id, c.kb_id, c.length, t.lexeme,
        coalesce(array_length(t.positions, 1), 1) AS tf
    FROM raggen_search_chunk c CROSS JOIN LATERAL unnest(c.tsv) AS t
    WHERE c.kb_id = ANY(%(kbs)s)
        AND c.tsv @@ (SELECT replace(plainto_tsquery('{config}', %(query)s)::text, ' & ', ' | ')
                      ::tsquery)
        AND t.lexeme IN (SELECT lexeme FROM q)
),
df AS (SELECT kb_id, lexeme, count(*) AS df FROM m GROUP BY kb_id, lexeme),
s AS (
    SELECT kb_id, chunks::float8 AS n, total_length::float8 / greatest(chunks, 1) AS avgdl
    FROM raggen_search_kb WHERE kb_id = ANY(%(kbs)s)
)
SELECT m.chunk_id,
    sum(q.qtf * ln(1 + (s.n - df.df + 0.5) / (df.df + 0.5))
        * m.tf / (m.tf + {k1} * (1 - {b} + {b} * m.length / s.avgdl))) AS score
FROM m JOIN q USING (lexeme) JOIN df USING (kb_id, lexeme) JOIN s USING (kb_id)
{allowed}
GROUP BY m.chunk_id
ORDER BY score DESC, m.chunk_id
LIMIT %(limit)s
"""


def _keyword_side(
    kb_ids: Sequence[int], query: str, limit: int, allowed: list[int] | None
) -> list[tuple[int, float]]:
    """The ``limit`` best chunks by BM25 (k1, b and idf of :mod:`embeddings.keyword`, statistics
    per knowledge base as the local backend keeps them), ties by chunk id."""
    if not kb_ids:
        return []
    sql = _KEYWORD_SQL.format(
        config=TS_CONFIG,
        k1=float(K1),
        b=float(B),
        allowed="" if allowed is None else "WHERE m.chunk_id = ANY(%(allowed)s)",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, {"query": query, "kbs": list(kb_ids), "allowed": allowed, "limit": limit}
        )
        rows = cursor.fetchall()
    return [(int(i), float(s)) for i, s in rows if float(s) > 0]


def keyword_lexemes(text: str) -> list[str]:
    """The lexemes PostgreSQL indexes for ``text`` (for tests and the documentation)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT lexeme FROM unnest(to_tsvector('{TS_CONFIG}', %s)) ORDER BY lexeme", [text]
        )
        return [row[0] for row in cursor.fetchall()]


__all__ = ["keyword_lexemes", "nearest", "search"]
