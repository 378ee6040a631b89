"""The application's error family. Services raise these; the API maps them to status codes in
one place (``raggen.api``), consumers send them as ``error`` events, and tasks record them as a
``failed`` status with the message as the reason."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """An error whose message is meant for the user."""

    status_code = 400

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class InvalidInput(ApplicationError):
    status_code = 422


class NotFound(ApplicationError):
    status_code = 404


class PermissionDenied(ApplicationError):
    status_code = 403


class Conflict(ApplicationError):
    status_code = 409


class PayloadTooLarge(ApplicationError):
    status_code = 413


class QuotaExceeded(ApplicationError):
    status_code = 429
