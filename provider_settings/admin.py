"""Admin for the provider settings kept encrypted in the database (API keys, folder id, base
URL): write-only values, set and deleted through :mod:`provider_settings.secrets`."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from provider_settings import secrets
from provider_settings.models import ProviderSecret
from providers.registry import MANAGED_SETTINGS


class ProviderSecretForm(forms.ModelForm):  # type: ignore[type-arg]
    """The value is write-only: typed in, encrypted, never rendered back."""

    name = forms.ChoiceField(label=_("setting"), choices=[(n, n) for n in MANAGED_SETTINGS])
    value = forms.CharField(
        label=_("value"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Stored encrypted; never shown again. Leave empty to keep the stored value."),
    )

    class Meta:
        model = ProviderSecret
        fields = ("name",)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk is None and not data.get("value"):
            self.add_error("value", _("Enter the value to store."))
        if not secrets.secrets_enabled():
            raise forms.ValidationError(
                _("Set PROVIDER_SECRETS_KEY in the environment to keep provider settings here.")
            )
        return data


@admin.register(ProviderSecret)
class ProviderSecretAdmin(admin.ModelAdmin[ProviderSecret]):
    """API keys and endpoints of the LLM providers, set here instead of the environment (a
    value here wins). The list and the form show only that a value is set."""

    form = ProviderSecretForm
    list_display = ("name", "stored", "updated_at", "updated_by")
    readonly_fields = ("stored", "updated_at", "updated_by")

    @admin.display(description=_("value"))
    def stored(self, obj: ProviderSecret) -> str:
        return str(_("set (hidden)")) if obj.pk else "—"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The setting a row holds is fixed once saved; a new value replaces the old one.
        return ("name", *self.readonly_fields) if obj is not None else self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("name", "value", "stored", "updated_at", "updated_by")

    def save_model(
        self, request: HttpRequest, obj: ProviderSecret, form: Any, change: bool
    ) -> None:
        value = form.cleaned_data.get("value")
        if value:
            saved = secrets.provider_secret_set(name=obj.name, value=value, actor=request.user)
            obj.pk, obj.ciphertext = saved.pk, saved.ciphertext

    def delete_model(self, request: HttpRequest, obj: ProviderSecret) -> None:
        secrets.provider_secret_delete(secret=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for secret in queryset:
            secrets.provider_secret_delete(secret=secret)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not secrets.secrets_enabled():
            messages.warning(
                request,
                _("Set PROVIDER_SECRETS_KEY in the environment to keep provider settings here."),
            )
        return super().changelist_view(request, extra_context)
