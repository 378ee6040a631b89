"""The API-token page: list, create (the new token is shown once, in the response to the POST,
and stored nowhere) and revoke, with plain HTML forms."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors, services
from accounts.forms import EXPIRY_DAYS, ApiTokenCreateForm
from accounts.models import ApiTokenScope
from core.errors import InvalidInput, NotFound


def _render(request: HttpRequest, status: int = 200, **context: Any) -> HttpResponse:
    return render(
        request,
        "accounts/tokens.html",
        {
            "tokens": selectors.api_token_list_for_user(user=request.user),
            "scopes": ApiTokenScope.choices,
            "expiry_days": EXPIRY_DAYS,
            **context,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """GET lists the user's tokens; POST creates one and shows its plaintext this once."""
    if request.method == "GET":
        return _render(request)
    form = ApiTokenCreateForm(request.POST)
    if not form.is_valid():
        return _render(request, form_error=_("Give the token a name."), status=400)
    try:
        token, plaintext = services.api_token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            expires_at=form.expires_at(),
            request=request,
        )
    except InvalidInput as exc:
        return _render(request, form_error=exc.message, status=400)
    return _render(request, new_token=token, plaintext=plaintext)


@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponseRedirect:
    """Revoke one of the user's tokens; someone else's token is a 404."""
    try:
        token = selectors.api_token_get_for_user(user=request.user, token_id=token_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    services.api_token_revoke(token=token, actor=request.user, request=request)
    messages.success(request, _("The token “%(name)s” is revoked.") % {"name": token.name})
    return redirect("account-tokens")
