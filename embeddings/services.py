"""The retrieval engine's entry points for the rest of the product.

Ingestion calls :func:`index_chunks` / :func:`remove_document`; chat and the API call
:func:`search`; operators call :func:`rebuild_index` (``manage.py rebuild_index``). Chunk rows
(``documents.Chunk.vector``) are the source of truth; the files under ``INDEX_DIR`` are a search
structure that is rebuilt from them whenever it is missing or damaged.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from numpy.typing import NDArray

from core.errors import ApplicationError, Conflict, InvalidInput, PayloadTooLarge
from documents.models import Chunk, Document, DocumentStatus, FileType, KnowledgeBase
from documents.models import Encoder as EncoderChoice
from embeddings import hybrid, store
from embeddings.cache import cache_counts, encode_cached, text_sha256
from embeddings.encoder import ANY_LANGUAGE, Encoder, SentenceTransformerEncoder, Vectors
from embeddings.keyword import Tokenizer
from embeddings.keyword import search as keyword_search
from embeddings.model_files import model_name, resolve_model_path
from embeddings.models import ChunkMetadata
from providers.errors import ProviderContextTooLong, ProviderError, ProviderNotConfigured

logger = logging.getLogger(__name__)

Mode = Literal["dense", "keyword", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "keyword", "hybrid")
# How many chunks each side returns before fusion.
CANDIDATES = 100
# Chunks encoded, written and indexed per step, so that memory stays bounded for any document.
INDEX_BATCH = 512
_QUERY_CACHE_SIZE = 1024
# Limits of one API call: enough for a page of chunks, small enough to answer in seconds.
MAX_TEXTS_PER_CALL = 256
MAX_TEXT_CHARS = 20_000


class ModelChanged(Conflict):
    """The knowledge base was built with another embedding model: it must be reindexed."""


class EncoderNotConfigured(ApplicationError):
    """A knowledge base asks for a provider's embeddings, but the provider has no credentials."""


class EmbeddingProviderError(ApplicationError):
    """A provider could not embed, and trying again will not help until the key, the model or
    the text changes (``retryable`` is false)."""

    retryable = False


class EmbeddingProviderUnavailable(EmbeddingProviderError):
    """A provider could not embed for now (rate limit after the adapter's own retries,
    unavailable, timeout): trying again later may help."""

    retryable = True


# --- the encoder -----------------------------------------------------------------------------

_encoder: Encoder | None = None
_encoder_override: Encoder | None = None
_encoder_lock = threading.Lock()
_tokenizer = Tokenizer()
_query_vectors: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
_query_lock = threading.Lock()
# Serialises, within a process, the re-embedding of a knowledge base whose encoder changed.
_switch_lock = threading.Lock()
_PROVIDER_LABELS: dict[str, str] = {"gigachat": "GigaChat", "yandex": "Yandex"}
# GigaChat models whose vector size is known before the first call (spec 2.7).
_KNOWN_GIGACHAT_DIMENSIONS = {"Embeddings": 1024}
_probed: set[int] = set()


def get_encoder() -> Encoder:
    """The process's encoder: ``EMBEDDING_MODEL`` (or the bundled all-MiniLM-L6-v2), created on
    first use; the model itself loads on the first ``encode``."""
    global _encoder
    if _encoder_override is not None:
        return _encoder_override
    if _encoder is None:
        with _encoder_lock:
            if _encoder is None:
                configured = settings.EMBEDDING_MODEL
                _encoder = SentenceTransformerEncoder(
                    resolve_model_path(configured),
                    name=model_name(configured),
                    batch_size=settings.EMBEDDING_BATCH_SIZE,
                    device=settings.EMBEDDING_DEVICE,
                )
    return _encoder


@contextmanager
def use_encoder(encoder: Encoder) -> Iterator[Encoder]:
    """Within the block, every service of this process uses ``encoder`` (tests, evaluation)."""
    global _encoder_override
    previous = _encoder_override
    _encoder_override = encoder
    try:
        yield encoder
    finally:
        _encoder_override = previous
        with _query_lock:
            _query_vectors.clear()


# --- the encoder of a knowledge base ---------------------------------------------------------


def _cache_name(encoder: Encoder) -> str:
    """The name under which ``encoder``'s vectors are cached: its model name, and the model
    kind where one name covers two models (Yandex's doc and query models)."""
    kind = getattr(encoder, "kind", "")
    return f"{encoder.name}#{kind}" if kind else encoder.name


def encoder_kind(model_name: str) -> str:
    """Which encoder choice (``local``, ``gigachat``, ``yandex``) produced vectors recorded
    under ``model_name``."""
    for choice in (EncoderChoice.GIGACHAT, EncoderChoice.YANDEX):
        if model_name.startswith(f"{choice.value}/"):
            return str(choice.value)
    return str(EncoderChoice.LOCAL.value)


def _not_configured(choice: str) -> EncoderNotConfigured:
    from providers.registry import provider_statuses

    label = _PROVIDER_LABELS.get(choice, choice)
    provider = "yandexgpt" if choice == EncoderChoice.YANDEX else "gigachat"
    how = next(s.how_to_configure for s in provider_statuses() if s.name == provider)
    return EncoderNotConfigured(
        _("%(label)s is not configured: %(how)s Or choose another encoder.")
        % {"label": label, "how": how[:1].lower() + how[1:]},
        {"encoder": choice},
    )


def check_encoder(choice: str) -> None:
    """Raises :class:`InvalidInput` for an unknown encoder choice and
    :class:`EncoderNotConfigured` (a 400 saying which variables to set) for a provider without
    credentials, so that a knowledge base never asks for an encoder it cannot use."""
    if choice not in EncoderChoice.values:
        known = ", ".join(EncoderChoice.values)
        raise InvalidInput(
            _("Unknown encoder %(name)r: use one of %(known)s.") % {"name": choice, "known": known}
        )
    if choice != EncoderChoice.LOCAL:
        _provider_encoder(choice)


def _provider_encoder(choice: str) -> Encoder:
    from providers.registry import get_encoder as get_provider_encoder

    try:
        encoder: Encoder = get_provider_encoder(choice)
    except ProviderNotConfigured:
        raise _not_configured(choice) from None
    return encoder


def _probe_dimension(choice: str, encoder: Encoder) -> None:
    """A GigaChat embedder whose vector size is not known up front is asked once per process,
    so that the size a knowledge base records is the size of its vectors."""
    model = getattr(encoder, "model", "")
    if choice != EncoderChoice.GIGACHAT or model in _KNOWN_GIGACHAT_DIMENSIONS:
        return
    if id(encoder) not in _probed:
        with _provider_errors(choice):
            encoder.encode(["dimension probe"])
        _probed.add(id(encoder))


def encoder_for(knowledge_base: KnowledgeBase) -> Encoder:
    """The encoder that embeds ``knowledge_base``'s chunks: the process's local model
    (:func:`get_encoder`), or the provider's (``gigachat``: ``Embeddings``, 1024-d; ``yandex``:
    ``text-search-doc``, 256-d) built from settings by the providers' registry. Raises
    :class:`EncoderNotConfigured` when that provider has no credentials."""
    choice = knowledge_base.encoder or EncoderChoice.LOCAL
    if choice == EncoderChoice.LOCAL:
        return get_encoder()
    encoder = _provider_encoder(choice)
    _probe_dimension(choice, encoder)
    return encoder


def query_encoder_for(knowledge_base: KnowledgeBase) -> Encoder:
    """The encoder of questions asked of ``knowledge_base``: Yandex's ``text-search-query``
    (the same vector space as its doc model), otherwise the chunks' encoder itself."""
    encoder = encoder_for(knowledge_base)
    for_queries = getattr(encoder, "for_queries", None)
    if for_queries is None:
        return encoder
    query_encoder: Encoder = for_queries()
    return query_encoder


@contextmanager
def _provider_errors(choice: str) -> Iterator[None]:
    """Provider errors become :class:`EmbeddingProviderError` with the provider's message."""
    try:
        yield
    except ProviderNotConfigured:
        raise _not_configured(choice) from None
    except ProviderContextTooLong as exc:
        label = _PROVIDER_LABELS.get(choice, choice)
        raise EmbeddingProviderError(
            _(
                "%(label)s embeddings refused a passage as too long for the model (%(message)s). "
                "Lower the maximum chunk size of this knowledge base."
            )
            % {"label": label, "message": exc.message},
            {"encoder": choice},
        ) from exc
    except ProviderError as exc:
        label = _PROVIDER_LABELS.get(choice, choice)
        error = EmbeddingProviderUnavailable if exc.retryable else EmbeddingProviderError
        raise error(
            _("%(label)s embeddings failed: %(message)s")
            % {"label": label, "message": exc.message},
            {"encoder": choice},
        ) from exc


def tokenize(text: str) -> list[str]:
    """The BM25 tokens of ``text`` (see :class:`embeddings.keyword.Tokenizer`)."""
    return _tokenizer.tokenize(text)


def validate_texts(texts: Sequence[str]) -> None:
    """Raises :class:`InvalidInput` for no text or a blank one, :class:`PayloadTooLarge` for more
    than ``MAX_TEXTS_PER_CALL`` texts or one longer than ``MAX_TEXT_CHARS`` characters."""
    if not texts:
        raise InvalidInput(_("Give at least one text."))
    if len(texts) > MAX_TEXTS_PER_CALL:
        raise PayloadTooLarge(
            _("Too many texts in one call: %(count)s, at most %(limit)s.")
            % {"count": len(texts), "limit": MAX_TEXTS_PER_CALL},
            {"limit": MAX_TEXTS_PER_CALL},
        )
    for position, text in enumerate(texts):
        if not text.strip():
            raise InvalidInput(
                _("Text %(index)s is empty.") % {"index": position}, {"index": position}
            )
        if len(text) > MAX_TEXT_CHARS:
            raise PayloadTooLarge(
                _("Text %(index)s has %(count)s characters, at most %(limit)s.")
                % {"index": position, "count": len(text), "limit": MAX_TEXT_CHARS},
                {"index": position, "limit": MAX_TEXT_CHARS},
            )


def embed_texts(*, texts: Sequence[str]) -> Vectors:
    """Unit-length vectors of ``texts`` from the cache or the encoder (one row per text).
    Raises as :func:`validate_texts` does."""
    validate_texts(texts)
    return encode_cached(get_encoder(), texts, batch_size=settings.EMBEDDING_BATCH_SIZE)


def _query_vector(encoder: Encoder, query: str) -> Vectors:
    key = (_cache_name(encoder), query)
    with _query_lock:
        cached = _query_vectors.get(key)
        if cached is not None:
            _query_vectors.move_to_end(key)
            return cached
    vector: Vectors = encoder.encode([query])[0]
    with _query_lock:
        _query_vectors[key] = vector
        while len(_query_vectors) > _QUERY_CACHE_SIZE:
            _query_vectors.popitem(last=False)
    return vector


# --- the index of a knowledge base -----------------------------------------------------------


def index_folder(kb_id: int) -> Path:
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
    knowledge_base: KnowledgeBase, chunks: Iterable[Chunk], *, batch_size: int = INDEX_BATCH
) -> int:
    """Embed saved ``chunks`` of ``knowledge_base`` (through the cache), store each vector in
    ``Chunk.vector`` and make them searchable (dense and keyword); returns how many.

    Works in batches of ``batch_size``, so ``chunks`` may be a lazy iterator of any length. Safe
    to run twice: a chunk indexed again replaces itself. The knowledge base's own encoder is
    used (:func:`encoder_for`); after its encoder was changed, the first call re-embeds the
    whole knowledge base (:func:`_switch_encoder`). Raises :class:`ModelChanged` when the
    knowledge base holds vectors of another model of the same encoder,
    :class:`EncoderNotConfigured` and :class:`EmbeddingProviderError`.
    """
    encoder = encoder_for(knowledge_base)
    with _provider_errors(knowledge_base.encoder):
        _switch_encoder(knowledge_base, encoder)
        _claim_model(knowledge_base, encoder)
        return _index_batches(knowledge_base, encoder, chunks, batch_size)


def _switch_encoder(knowledge_base: KnowledgeBase, encoder: Encoder) -> None:
    """When the knowledge base's encoder was changed (say local to GigaChat) and it still holds
    vectors of the old one, re-embed all of its chunks with the new one and replace its index
    at once (search keeps the old index until then), so no index ever mixes two encoders.
    Another model of the same encoder (``EMBEDDING_MODEL`` changed) is left to
    :func:`_claim_model`, which asks the operator to rebuild."""

    def switching() -> bool:
        knowledge_base.refresh_from_db(fields=["embedding_model", "embedding_dimension"])
        recorded = knowledge_base.embedding_model
        return bool(
            recorded
            and (recorded, knowledge_base.embedding_dimension) != (encoder.name, encoder.dimension)
            and encoder_kind(recorded) != encoder_kind(encoder.name)
            and Chunk.objects.filter(knowledge_base=knowledge_base, vector__isnull=False).exists()
        )

    if not switching():
        return
    with _switch_lock:
        if switching():
            logger.info(
                "knowledge base %s: re-embedding with %s (was %s)",
                knowledge_base.pk,
                encoder.name,
                knowledge_base.embedding_model,
            )
            rebuild_index(knowledge_base)


def _index_batches(
    knowledge_base: KnowledgeBase, encoder: Encoder, chunks: Iterable[Chunk], batch_size: int
) -> int:
    index = _index(knowledge_base.pk)
    total = 0
    for batch in _batches(chunks, batch_size):
        vectors = encode_cached(
            encoder,
            [_embed_text(c, knowledge_base.heading_context) for c in batch],
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
            rebuild_index(knowledge_base)
        total += len(batch)
    return total


def remove_chunks(knowledge_base: KnowledgeBase, chunk_ids: Sequence[int]) -> None:
    """Make these chunks unsearchable (their rows are the caller's business)."""
    index = _index(knowledge_base.pk)
    try:
        index.remove(np.asarray(chunk_ids, dtype=np.int64))
    except store.IndexCorrupt as exc:
        logger.warning(
            "index of knowledge base %s unusable (%s): rebuilding", knowledge_base.pk, exc
        )
        rebuild_index(knowledge_base, exclude=chunk_ids)


def remove_document(knowledge_base: KnowledgeBase, document_id: int) -> int:
    """Make every chunk of the document unsearchable; returns how many. Call it before the
    chunk rows are deleted (it reads their ids); chunks whose rows are already gone never show
    up in results either, and leave the index at the next rebuild."""
    ids = list(
        Chunk.objects.filter(knowledge_base=knowledge_base, document_id=document_id).values_list(
            "id", flat=True
        )
    )
    if ids:
        remove_chunks(knowledge_base, ids)
    return len(ids)


def knowledge_base_index_delete(kb_id: int) -> None:
    """Delete the index files of a knowledge base that is being deleted."""
    folder = index_folder(kb_id)
    _index(kb_id).destroy()
    store.forget(folder)


def rebuild_index(knowledge_base: KnowledgeBase, *, exclude: Sequence[int] = ()) -> store.Snapshot:
    """Rebuild the knowledge base's index files from its chunk rows, re-embedding (through the
    cache, with the knowledge base's encoder) the chunks without a vector or with another
    model's; the old files serve searches until the new ones are complete, and the knowledge
    base records the new model only then. Returns the new snapshot."""
    encoder = encoder_for(knowledge_base)
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
        for batch in _batches(rows.iterator(chunk_size=2000), 2000):
            yield _batch_vectors(batch, encoder, reembed, knowledge_base.heading_context)

    with _provider_errors(knowledge_base.encoder):
        snapshot = _index(knowledge_base.pk).replace_all(
            batches(), model=encoder.name, dimension=encoder.dimension
        )
    if reembed:
        # Only now: until the new index is complete, the old one (and its model) serves.
        KnowledgeBase.objects.filter(pk=knowledge_base.pk).update(
            embedding_model=encoder.name, embedding_dimension=encoder.dimension
        )
        # Document vectors were the old model's: recomputed on demand (embeddings.document_vectors).
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
            encoder,
            [_embed_text(batch[r], heading_context) for r in stale],
            batch_size=settings.EMBEDDING_BATCH_SIZE,
        )
        for row, vector in zip(stale, fresh, strict=True):
            vectors[row] = vector
            batch[row].vector = vector.tobytes()
        Chunk.objects.bulk_update([batch[r] for r in stale], ["vector"])
    ids = np.asarray([c.pk for c in batch], dtype=np.int64)
    return ids, vectors, [tokenize(_keyword_text(c)) for c in batch]


def index_stale_reason(kb: KnowledgeBase) -> str | None:
    """Why ``kb``'s index files must be rebuilt before they serve (missing while chunks have
    vectors, damaged, built by another tokenizer version), or None. Reads only the manifest,
    so that ``rebuild_index --stale`` can check every knowledge base at start-up."""
    index = _index(kb.pk)
    if not index.manifest_path.exists():
        if Chunk.objects.filter(knowledge_base=kb, vector__isnull=False).exists():
            return "missing"
        return None
    return index.stale_reason()


def _snapshot(kb: KnowledgeBase) -> store.Snapshot:
    """The current index of ``kb``, rebuilt from the database when missing or damaged."""
    index = _index(kb.pk)
    try:
        snap = index.snapshot()
    except store.StaleIndex as exc:
        logger.warning("index of knowledge base %s is outdated (%s): rebuilding", kb.pk, exc)
        return rebuild_index(kb)
    except store.IndexCorrupt as exc:
        logger.warning("index of knowledge base %s is damaged (%s): rebuilding", kb.pk, exc)
        return rebuild_index(kb)
    if not snap.exists and Chunk.objects.filter(knowledge_base=kb, vector__isnull=False).exists():
        logger.warning("index of knowledge base %s is missing: rebuilding", kb.pk)
        return rebuild_index(kb)
    return snap


# --- adding texts directly (the vector API) --------------------------------------------------


@dataclass(frozen=True)
class AddedTexts:
    document_id: int
    chunk_ids: list[int]


def add_texts(
    *,
    knowledge_base: KnowledgeBase,
    texts: Sequence[str],
    metadata: Sequence[dict[str, Any]] | None = None,
    title: str = "",
    user: Any = None,
) -> AddedTexts:
    """Store ``texts`` as the chunks of one new text document of ``knowledge_base`` and index
    them; ``metadata[i]`` (optional) is kept with chunk i and returned with search hits. Keys
    ``page`` and ``heading_path`` also fill the chunk's own fields. Raises as
    :func:`validate_texts` does, and :class:`ModelChanged`."""
    validate_texts(texts)
    metas = list(metadata) if metadata is not None else [{} for _ in texts]
    if len(metas) != len(texts):
        raise InvalidInput(_("Give one metadata object per text, or none."))
    body = "\n\n".join(texts)
    with transaction.atomic():
        document = Document.objects.create(
            knowledge_base=knowledge_base,
            title=title or (texts[0][:80] if texts else "texts"),
            original_name="api-texts.txt",
            file="",
            file_type=FileType.TXT,
            size=len(body.encode()),
            sha256=text_sha256(body),
            status=DocumentStatus.INDEXED,
            progress=100,
            chunk_count=len(texts),
            uploaded_by=user if user is not None and user.is_authenticated else None,
        )
        chunks = []
        offset = 0
        for ordinal, (text, meta) in enumerate(zip(texts, metas, strict=True)):
            page = meta.get("page")
            chunks.append(
                Chunk(
                    document=document,
                    knowledge_base=knowledge_base,
                    ordinal=ordinal,
                    text=text,
                    heading_path=str(meta.get("heading_path", ""))[:1000],
                    page_start=page if isinstance(page, int) and page >= 0 else None,
                    page_end=page if isinstance(page, int) and page >= 0 else None,
                    char_start=offset,
                    char_end=offset + len(text),
                    token_count=len(text.split()),
                    text_sha256=text_sha256(text),
                )
            )
            offset += len(text) + 2
        Chunk.objects.bulk_create(chunks)
        ChunkMetadata.objects.bulk_create(
            [ChunkMetadata(chunk=c, data=m) for c, m in zip(chunks, metas, strict=True) if m]
        )
    index_chunks(knowledge_base, chunks)
    return AddedTexts(document.pk, [c.pk for c in chunks])


def delete_vectors(*, knowledge_base: KnowledgeBase, chunk_ids: Sequence[int]) -> int:
    """Delete these chunks of ``knowledge_base`` (rows and index entries); ids of other
    knowledge bases are ignored. Returns how many were deleted."""
    ids = list(
        Chunk.objects.filter(knowledge_base=knowledge_base, pk__in=chunk_ids).values_list(
            "id", flat=True
        )
    )
    if ids:
        remove_chunks(knowledge_base, ids)
        Chunk.objects.filter(pk__in=ids).delete()
    return len(ids)


# --- searching --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    knowledge_base_id: int
    document_id: int
    document_title: str
    file_type: str
    text: str
    heading_path: str
    ordinal: int
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    score: float
    dense_score: float | None
    keyword_score: float | None
    fused_score: float | None
    metadata: dict[str, Any] = field(default_factory=dict)
    file_name: str = ""  # the uploaded file's name


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    mode: Mode
    dense_weight: float
    keyword_weight: float
    notes: list[str]


def _allowed_ids(
    kbs: Sequence[KnowledgeBase],
    document_ids: Sequence[int] | None,
    file_types: Sequence[str] | None,
) -> NDArray[np.int64] | None:
    if document_ids is None and not file_types:
        return None
    rows = Chunk.objects.filter(knowledge_base__in=kbs)
    if document_ids is not None:
        rows = rows.filter(document_id__in=document_ids)
    if file_types:
        rows = rows.filter(document__file_type__in=file_types)
    return np.sort(np.fromiter(rows.values_list("id", flat=True), dtype=np.int64))


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
    """The ``top_k`` chunks of ``knowledge_bases`` that best answer ``query``.

    ``mode``: ``dense`` (cosine similarity), ``keyword`` (BM25) or ``hybrid`` (both sides' top
    ``candidates`` fused by ``fusion``: ``convex``, a weighted sum of min-max normalised scores,
    or ``rrf``, weighted reciprocal rank fusion; see :mod:`embeddings.hybrid`). Weights default
    to the first knowledge base's ``dense_weight``/``keyword_weight``; in hybrid mode the dense
    weight is turned down when the encoder does not know the language of the query or of a
    knowledge base (see ``notes``). ``min_score`` applies to the mode's score: cosine, BM25, or
    the fused score in [0, 1]. ``document_ids``/``file_types`` restrict the chunks searched.
    Hits are ordered by score, ties by chunk id. ``query_vector`` replaces the query's embedding
    on the dense side (then ``query`` may be empty in dense mode). The caller has checked access
    to ``knowledge_bases``. Raises :class:`InvalidInput` for an unknown mode or fusion, a blank
    query, or a query vector whose dimension is not the index's.
    """
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
    snapshots = [(kb, _snapshot(kb)) for kb in knowledge_bases]
    notes: list[str] = []
    encoders = _query_encoders(knowledge_bases, notes) if query_vector is None else {}
    first = encoders.get(knowledge_bases[0].pk)
    languages = first.languages if first is not None else frozenset({ANY_LANGUAGE})
    weights = _weights(
        knowledge_bases[0], mode, query, dense_weight, keyword_weight, snapshots, languages
    )
    if weights.reason:
        notes.insert(0, weights.reason)
    allowed = _allowed_ids(knowledge_bases, document_ids, file_types)
    pool = max(candidates, top_k)
    dense_ranked: Sequence[tuple[int, float]] = []
    keyword_ranked: Sequence[tuple[int, float]] = []
    # A side with weight 0 in hybrid mode is not searched at all (e.g. a Russian query on an
    # English-only encoder: its query embedding would cost time and add nothing).
    if mode == "dense" or (mode == "hybrid" and weights.dense > 0):
        vector = _given_vector(query_vector)
        dense_ranked = _dense_side(
            snapshots, encoders, query, vector, pool, allowed, notes, strict=mode == "dense"
        )
    if mode == "keyword" or (mode == "hybrid" and weights.keyword > 0):
        tokens = tokenize(query)
        lists = [keyword_search(s.keyword_views(), tokens, pool, allowed) for _, s in snapshots]
        keyword_ranked = _merge_lists(lists, pool) if tokens else []
    if mode == "hybrid":
        # Only the best are turned into hits; the margin covers chunks deleted meanwhile.
        limit = 2 * top_k + 20
        fused = hybrid.fuse(dense_ranked, keyword_ranked, weights, method=fusion, limit=limit)
    else:
        fused = hybrid.single(dense_ranked if mode == "dense" else keyword_ranked, side=mode)
    if min_score is not None:
        fused = [h for h in fused if h.score >= min_score]
    hits = _hydrate(fused, top_k, fused_scores=mode == "hybrid")
    return SearchResult(hits, mode, weights.dense, weights.keyword, notes)


def _weights(
    kb: KnowledgeBase,
    mode: Mode,
    query: str,
    dense_weight: float | None,
    keyword_weight: float | None,
    snapshots: Sequence[tuple[KnowledgeBase, store.Snapshot]],
    encoder_languages: frozenset[str],
) -> hybrid.Weights:
    dense = kb.dense_weight if dense_weight is None else dense_weight
    keyword = kb.keyword_weight if keyword_weight is None else keyword_weight
    if mode != "hybrid":
        return hybrid.Weights(dense, keyword)
    return hybrid.effective_weights(
        dense,
        keyword,
        query_language=hybrid.text_language(query),
        corpus_languages=[
            hybrid.corpus_language(s.manifest.latin_tokens, s.manifest.cyrillic_tokens)
            for _, s in snapshots
        ],
        encoder_languages=encoder_languages,
    )


def _query_encoders(
    knowledge_bases: Sequence[KnowledgeBase], notes: list[str]
) -> dict[int, Encoder | None]:
    """Each knowledge base's query encoder; ``None``, with a note, for a provider that is no
    longer configured (its dense side is skipped, the keyword side still answers)."""
    encoders: dict[int, Encoder | None] = {}
    for kb in knowledge_bases:
        try:
            encoders[kb.pk] = query_encoder_for(kb)
        except ApplicationError as exc:
            encoders[kb.pk] = None
            notes.append(f"dense search of knowledge base {kb.pk} skipped: {exc.message}")
    return encoders


def _dense_side(
    snapshots: Sequence[tuple[KnowledgeBase, store.Snapshot]],
    encoders: dict[int, Encoder | None],
    query: str,
    given: Vectors | None,
    pool: int,
    allowed: NDArray[np.int64] | None,
    notes: list[str],
    *,
    strict: bool,
) -> Sequence[tuple[int, float]]:
    """Each knowledge base's nearest chunks to the query, embedded by its own query encoder
    (so a GigaChat knowledge base is searched with a GigaChat vector). A provider that fails
    skips its knowledge base with a note, or raises :class:`EmbeddingProviderError` when
    ``strict`` (dense mode: there is no keyword side to fall back on)."""
    lists = []
    for kb, snap in snapshots:
        encoder = encoders.get(kb.pk)
        if not snap.count:
            continue
        if given is not None:
            if len(given) != snap.manifest.dimension:
                raise InvalidInput(
                    _(
                        "The query vector has %(count)s dimensions; knowledge base %(id)s "
                        "holds %(dimension)s-dimensional vectors."
                    )
                    % {"count": len(given), "id": kb.pk, "dimension": snap.manifest.dimension},
                    {"expected_dimension": snap.manifest.dimension},
                )
            lists.append(
                store.dense_search(snap, given, pool, allowed, threads=settings.SEARCH_THREADS)
            )
        elif encoder is None:
            continue
        elif (snap.manifest.model, snap.manifest.dimension) == (encoder.name, encoder.dimension):
            try:
                with _provider_errors(kb.encoder):
                    vector = _query_vector(encoder, query)
            except EmbeddingProviderError as exc:
                if strict:
                    raise
                notes.append(f"dense search of knowledge base {kb.pk} skipped: {exc.message}")
                continue
            lists.append(
                store.dense_search(snap, vector, pool, allowed, threads=settings.SEARCH_THREADS)
            )
        else:
            notes.append(
                f"knowledge base {kb.pk} was indexed with {snap.manifest.model}: dense search "
                "skipped until it is rebuilt"
            )
    return _merge_lists(lists, pool)


def _given_vector(values: Sequence[float] | None) -> Vectors | None:
    if values is None:
        return None
    vector = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if vector.ndim != 1 or not np.isfinite(vector).all() or norm == 0:
        raise InvalidInput(_("The query vector must be a non-zero list of finite numbers."))
    result: Vectors = vector / norm
    return result


def _merge_lists(
    lists: Sequence[Sequence[tuple[int, float]]], limit: int
) -> Sequence[tuple[int, float]]:
    if not lists:
        return []
    if len(lists) == 1:
        return lists[0]
    merged = [pair for ranked in lists for pair in ranked]
    merged.sort(key=lambda p: (-p[1], p[0]))
    return merged[:limit]


def _hydrate(fused: list[hybrid.Hit], top_k: int, *, fused_scores: bool) -> list[SearchHit]:
    """Chunk rows for the hits, best first; ids whose rows are gone are skipped (and the list
    is topped up from further down)."""
    hits: list[SearchHit] = []
    position = 0
    while len(hits) < top_k and position < len(fused):
        window = fused[position : position + top_k - len(hits) + 10]
        position += len(window)
        rows = {
            c.pk: c
            # Only chunks of indexed, current documents: a document being ingested (or a new
            # version not yet swapped in) is invisible, so none is ever half-indexed.
            for c in Chunk.objects.filter(
                pk__in=[h.chunk_id for h in window],
                document__status=DocumentStatus.INDEXED,
                document__is_current=True,
            )
            .select_related("document", "metadata")
            .only(
                "pk",
                "knowledge_base_id",
                "text",
                "heading_path",
                "ordinal",
                "page_start",
                "page_end",
                "char_start",
                "char_end",
                "document__id",
                "document__title",
                "document__file_type",
                "document__original_name",
                "metadata__data",
            )
        }
        for h in window:
            chunk = rows.get(h.chunk_id)
            if chunk is None or len(hits) == top_k:
                continue
            hits.append(_search_hit(chunk, h, fused_scores))
    return hits


def _search_hit(chunk: Chunk, hit: hybrid.Hit, fused_scores: bool) -> SearchHit:
    # A missing one-to-one row raises RelatedObjectDoesNotExist, an AttributeError.
    row: ChunkMetadata | None = getattr(chunk, "metadata", None)
    metadata = dict(row.data) if row is not None else {}
    return SearchHit(
        chunk_id=chunk.pk,
        knowledge_base_id=chunk.knowledge_base_id,
        document_id=chunk.document.pk,
        document_title=chunk.document.title,
        file_type=chunk.document.file_type,
        text=chunk.text,
        heading_path=chunk.heading_path,
        ordinal=chunk.ordinal,
        page_start=chunk.page_start,
        page_end=chunk.page_end,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
        score=hit.score,
        dense_score=hit.dense,
        keyword_score=hit.keyword,
        fused_score=hit.score if fused_scores else None,
        metadata=metadata,
        file_name=chunk.document.original_name,
    )


# --- statistics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexStats:
    knowledge_base_id: int
    count: int
    database_count: int
    deleted: int
    segments: int
    model: str
    dimension: int
    index_type: str
    file_bytes: int
    version: int
    cache_hits: int
    cache_misses: int
    cache_entries: int


def index_stats(knowledge_base: KnowledgeBase) -> IndexStats:
    """Counts and sizes of the knowledge base's index, and its model's cache counters."""
    snap = _snapshot(knowledge_base)
    folder = index_folder(knowledge_base.pk)
    manifest = snap.manifest
    file_bytes = sum(size for s in manifest.segments for size, _crc in s.files.values())
    kinds = sorted({s.kind for s in manifest.segments}) or ["flat"]
    model = (
        manifest.model
        or knowledge_base.embedding_model
        or (get_encoder().name if knowledge_base.encoder == EncoderChoice.LOCAL else "")
    )
    hits, misses, entries = cache_counts(model)
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


__all__ = [
    "MAX_TEXTS_PER_CALL",
    "MAX_TEXT_CHARS",
    "MODES",
    "AddedTexts",
    "EmbeddingProviderError",
    "EmbeddingProviderUnavailable",
    "EncoderNotConfigured",
    "IndexStats",
    "ModelChanged",
    "SearchHit",
    "SearchResult",
    "add_texts",
    "check_encoder",
    "delete_vectors",
    "embed_texts",
    "encoder_for",
    "get_encoder",
    "index_chunks",
    "index_stats",
    "knowledge_base_index_delete",
    "query_encoder_for",
    "rebuild_index",
    "remove_chunks",
    "remove_document",
    "search",
    "use_encoder",
    "validate_texts",
]
