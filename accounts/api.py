"""Personal API tokens over the JSON API. Creating one needs a signed-in session: a token
cannot mint tokens."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router
from ninja.responses import Status
from ninja.security import django_auth

from accounts import selectors, services
from accounts.models import ApiToken
from accounts.schemas import ApiTokenCreateIn, ApiTokenCreateOut, ApiTokenOut
from core.schemas import errors

router = Router(tags=["API tokens"])
# 403: a read-only token cannot revoke, and no token can create one (a session is needed).
_ERRORS = errors(403, 404)


@router.get("/tokens", response={200: list[ApiTokenOut], **_ERRORS})
def list_tokens(request: HttpRequest) -> list[ApiToken]:
    return list(selectors.api_token_list_for_user(user=request.user))


@router.post("/tokens", auth=[django_auth], response={201: ApiTokenCreateOut, **_ERRORS})
def create_token(request: HttpRequest, payload: ApiTokenCreateIn) -> Status[Any]:
    token, plaintext = services.api_token_create(
        user=request.user, **payload.dict(), request=request
    )
    return Status(201, {"token": token, "plaintext": plaintext})


@router.delete("/tokens/{token_id}", response={204: None, **_ERRORS})
def revoke_token(request: HttpRequest, token_id: int) -> Status[None]:
    token = selectors.api_token_get_for_user(user=request.user, token_id=token_id)
    services.api_token_revoke(token=token, actor=request.user, request=request)
    return Status(204, None)
