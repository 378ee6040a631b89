"""The form of the API-token page (validation only; the template renders the fields)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

from accounts.models import ApiTokenScope

EXPIRY_DAYS = (7, 30, 90, 365)


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)
    scope = forms.ChoiceField(choices=ApiTokenScope.choices, initial=ApiTokenScope.READ)
    expires_in_days = forms.TypedChoiceField(
        choices=[("", "never"), *((str(d), str(d)) for d in EXPIRY_DAYS)],
        coerce=int,
        empty_value=None,
        required=False,
    )

    def expires_at(self) -> datetime | None:
        """The expiry chosen, as a moment; None for a token that does not expire."""
        days = self.cleaned_data.get("expires_in_days")
        return None if days is None else timezone.now() + timedelta(days=days)
