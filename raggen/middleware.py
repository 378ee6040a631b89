from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import LoginRequiredMiddleware as _DjangoLoginRequired
from django.http import HttpRequest, HttpResponseBase

_API_PREFIX = "/api/"
_API_PAGES = ("/docs",)


class LoginRequiredMiddleware(_DjangoLoginRequired):
    """Django's login-required default, except that API operations answer 401 as JSON (ninja's
    auth does that) instead of redirecting to the login page. The API's docs are a page and
    redirect like any other; its schema (``openapi.json``) is read with a session or a token and
    checks them itself (``raggen.api``)."""

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        path = request.path_info
        if path.startswith(_API_PREFIX) and not path.endswith(_API_PAGES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
