"""The usage app's errors (their status codes are the roof's: ``raggen.api.STATUS_CODES``)."""

from __future__ import annotations

from core.errors import ApplicationError


class QuotaExceeded(ApplicationError):
    """A user has used up a daily limit; ``extra`` says which, and when it resets."""
