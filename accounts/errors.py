"""Errors of the accounts app, in the application's error family."""

from __future__ import annotations

from core.errors import ApplicationError


class ApiTokenRejected(ApplicationError):
    """The bearer token is unknown, revoked or expired; the message says which."""
