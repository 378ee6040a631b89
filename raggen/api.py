"""The one ``NinjaAPI``, mounted at ``/api/v1/``. Application errors map to status codes here."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.security import django_auth

from accounts.auth import ApiTokenAuth
from raggen.errors import ApplicationError

api = NinjaAPI(
    title="RAGGEN API",
    version="1",
    description="Knowledge bases, documents, search and chat. Sign in, or send an API token.",
    auth=[ApiTokenAuth(), django_auth],
    urls_namespace="api",
)


@api.exception_handler(ApplicationError)
def _application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    response = api.create_response(
        request, {"detail": exc.message, **exc.extra}, status=exc.status_code
    )
    if "retry_after" in exc.extra:  # rate limits and quotas (429)
        response["Retry-After"] = str(exc.extra["retry_after"])
    return response


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request, {"detail": _("Sign in or send a valid API token.")}, status=401
    )


def register_routers() -> None:
    """Adds each app's router. Called once from ``raggen.urls``."""
    from documents.api import router as documents_router
    from embeddings.api import router as embeddings_router

    api.add_router("/", documents_router)
    api.add_router("/", embeddings_router)
    api.add_router("/", "chat.api.router")
    api.add_router("/", "accounts.api.router")
