"""The allauth social-account adapter: providers come from settings only (``raggen.settings``
builds ``SOCIALACCOUNT_PROVIDERS`` from the environment)."""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from django.http import Http404, HttpRequest


class SocialAccountAdapter(DefaultSocialAccountAdapter):  # type: ignore[misc]
    """A provider that is not configured answers 404 at its login and callback URLs, as if it
    did not exist, instead of allauth's server error."""

    def get_app(self, request: HttpRequest | None, provider: str, client_id: Any = None) -> Any:
        try:
            return super().get_app(request, provider=provider, client_id=client_id)
        except SocialApp.DoesNotExist:
            raise Http404("This sign-in method is not configured.") from None
