"""The application's error family. Services raise these; the API maps them to status codes in
one place (``raggen.api``, a table looked up along each class's MRO), consumers send them as
``error`` events, and tasks record them as a ``failed`` status with the message as the reason.

No error here knows about HTTP: which status code an error answers with is the roof's business."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """An error whose message is meant for the user."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class InvalidInput(ApplicationError):
    pass


class NotFound(ApplicationError):
    pass


class PermissionDenied(ApplicationError):
    pass


class Conflict(ApplicationError):
    pass


class PayloadTooLarge(ApplicationError):
    pass
