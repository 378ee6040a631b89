"""The application's error family. Services raise these; the API maps them to status codes in
one place (``raggen.api``, a table looked up along each class's MRO), consumers send them as
``error`` events, and tasks record them as a ``failed`` status with the message as the reason.

No error here knows about HTTP: which status code an error answers with is the roof's business."""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext as _


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


#: The database errors that mean "not answering now" (a restart, a dropped connection, a
#: locked SQLite file), as opposed to a bug (``IntegrityError``, ``ProgrammingError``): the
#: request answers 503 with ``Retry-After`` and the next one, on a new connection, works.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)

#: Seconds a client should wait before trying again after a 503 for the database.
DATABASE_RETRY_AFTER = 5


def database_unavailable_message() -> str:
    return _("The database is not answering right now. Try again in a few seconds.")
