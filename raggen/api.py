"""The one ``NinjaAPI``, mounted at ``/api/v1/``. Application errors map to status codes here,
in one table (``STATUS_CODES``, read by :func:`status_for`); the errors themselves know no HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.security import django_auth

from accounts.auth import ApiTokenAuth
from accounts.errors import ApiTokenRejected
from core.errors import (
    DATABASE_RETRY_AFTER,
    DATABASE_UNAVAILABLE,
    ApplicationError,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    database_unavailable_message,
)
from core.ratelimit import RateLimited
from documents.api import router as documents_router
from documents.retrieval import (
    EmbeddingProviderError,
    EmbeddingProviderUnavailable,
    EncoderNotConfigured,
)
from documents.retrieval.api import router as vectors_router
from documents.stored_files import StorageUnavailable
from usage.errors import QuotaExceeded

logger = logging.getLogger(__name__)

#: The status code each application error answers with. An error not listed answers with the
#: entry of its nearest listed base class (looked up along the MRO), so ``ModelChanged``, a
#: ``Conflict``, answers 409.
STATUS_CODES: dict[type[ApplicationError], int] = {
    ApplicationError: 400,
    InvalidInput: 422,
    NotFound: 404,
    PermissionDenied: 403,
    Conflict: 409,
    PayloadTooLarge: 413,
    QuotaExceeded: 429,
    RateLimited: 429,
    ApiTokenRejected: 401,
    EncoderNotConfigured: 400,
    EmbeddingProviderError: 502,
    EmbeddingProviderUnavailable: 503,
    StorageUnavailable: 503,
}


def status_for(exc: ApplicationError) -> int:
    """The status code ``exc`` answers with: the entry of its class or its nearest base."""
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 400


_token_auth = ApiTokenAuth()


def _docs_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The OpenAPI schema (``openapi.json``) is read with a session or an API token, like the
    API; without either it answers 401 as the API does. The docs page is a page: it sends an
    anonymous visitor to the login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            try:
                token = _token_auth(request)
            except ApplicationError as exc:
                return _application_error(request, exc)
            if token is None:
                if request.path.endswith(".json"):
                    return _unauthenticated(request, AuthenticationError())
                return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


api = NinjaAPI(
    title="RAGGEN API",
    version="1",
    description="Knowledge bases, documents, search and chat. Sign in, or send an API token.",
    auth=[ApiTokenAuth(), django_auth],
    urls_namespace="api",
    docs_decorator=_docs_access,
)


@api.exception_handler(ApplicationError)
def _application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    response = api.create_response(
        request, {"detail": exc.message, **exc.extra}, status=status_for(exc)
    )
    if "retry_after" in exc.extra:  # rate limits and quotas (429)
        response["Retry-After"] = str(exc.extra["retry_after"])
    return response


def _database_unavailable(request: HttpRequest, exc: Exception | type[Exception]) -> HttpResponse:
    # The database restarted or dropped the connection: a 503 the client can retry, not a 500.
    # The next request opens a new connection (CONN_MAX_AGE 0 with health checks), so the
    # process recovers by itself when the database is back.
    logger.warning("database unavailable during %s %s: %s", request.method, request.path, exc)
    response = api.create_response(
        request,
        {"detail": database_unavailable_message(), "code": "database_unavailable"},
        status=503,
    )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


for _error in DATABASE_UNAVAILABLE:
    api.add_exception_handler(_error, _database_unavailable)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request, {"detail": _("Sign in or send a valid API token.")}, status=401
    )


def register_routers() -> None:
    """Adds each app's router. Called once from ``raggen.urls``."""
    api.add_router("/", documents_router)
    api.add_router("/", vectors_router)
    api.add_router("/", "chat.api.router")
    api.add_router("/", "accounts.api.router")
