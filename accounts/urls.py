"""Account pages, mounted at /account/ (allauth's sign-in pages live under /accounts/)."""

from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    path("tokens/", views.api_tokens, name="account-tokens"),
    path("tokens/<int:token_id>/revoke/", views.api_token_revoke, name="account-token-revoke"),
]
