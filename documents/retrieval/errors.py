"""The errors of retrieval (no HTTP status here: ``raggen.api.STATUS_CODES`` maps them)."""

from __future__ import annotations

from core.errors import ApplicationError, Conflict


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
