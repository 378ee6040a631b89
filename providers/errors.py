"""The provider error family. Adapters map every HTTP and network failure to one of these;
no library exception escapes an adapter. ``message`` is written for the user of the chat."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider could not answer. ``retryable`` says whether trying again later may help."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        provider: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        if retryable is not None:
            self.retryable = retryable


class ProviderNotConfigured(ProviderError):
    """The provider has no credentials or URL; the message says how to configure it."""


class UnknownProvider(ProviderError):
    """No provider has this name."""


class ProviderAuthError(ProviderError):
    """The key or token was rejected (401/403), or the token has expired."""


class ProviderBadRequest(ProviderError):
    """The provider rejected the request itself (400/422)."""


class ProviderModelNotFound(ProviderBadRequest):
    """The model does not exist or the account cannot use it."""


class ProviderContextTooLong(ProviderBadRequest):
    """The prompt (question plus passages plus history) exceeds the model's context."""


class ProviderRateLimited(ProviderError):
    """Too many requests (429); ``retry_after`` is the server's hint in seconds, if any."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        provider: str = "",
        status: int | None = 429,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """The provider is down, unreachable or failing (5xx, connection refused)."""

    retryable = True


class ProviderTimeout(ProviderUnavailable):
    """Connecting or waiting for the next piece of the answer took longer than allowed."""


class ProviderStreamInterrupted(ProviderUnavailable):
    """The stream broke after it had started: the deltas already yielded are a partial answer."""


class ProviderBadResponse(ProviderError):
    """The provider sent something that does not follow its own protocol."""

    retryable = True
