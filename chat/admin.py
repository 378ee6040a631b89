"""Admin for prompt templates, conversations (read-only) and usage: a list of usage records, a
dashboard with charts (per day, per user, per provider and model, errors), a CSV export and the
questions that found no good context. The numbers come from :mod:`chat.usage`."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from chat import provider_secrets, usage
from chat.charts import bar_chart
from chat.models import (
    Citation,
    Conversation,
    Message,
    PromptTemplate,
    ProviderSecret,
    UsageRecord,
)
from providers.registry import MANAGED_SETTINGS


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin[PromptTemplate]):
    list_display = ("name", "owner", "updated_at")
    list_filter = (("owner", admin.EmptyFieldListFilter),)
    search_fields = ("name", "body")


class _ReadOnly:
    """Staff may look, never change: conversations are their owners' (and the usage records
    are written by the answers)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MessageInline(_ReadOnly, admin.TabularInline[Message, Conversation]):
    model = Message
    fields = (
        "role",
        "status",
        "content",
        "provider",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "total_ms",
        "error",
    )
    readonly_fields = fields
    extra = 0


@admin.register(Conversation)
class ConversationAdmin(_ReadOnly, admin.ModelAdmin[Conversation]):
    list_display = ("title", "owner", "provider", "model", "updated_at")
    list_filter = ("provider",)
    search_fields = ("title", "owner__username", "owner__email")
    list_select_related = ("owner",)
    date_hierarchy = "updated_at"
    inlines = (MessageInline,)


class CitationInline(_ReadOnly, admin.TabularInline[Citation, Message]):
    model = Citation
    fields = ("number", "document_title", "page", "score", "quote")
    readonly_fields = fields
    extra = 0


@admin.register(Message)
class MessageAdmin(_ReadOnly, admin.ModelAdmin[Message]):
    list_display = ("id", "conversation", "role", "status", "provider", "model", "created_at")
    list_filter = ("status", "role", "provider")
    search_fields = ("content",)
    list_select_related = ("conversation",)
    inlines = (CitationInline,)


@admin.register(UsageRecord)
class UsageRecordAdmin(_ReadOnly, admin.ModelAdmin[UsageRecord]):
    """The records, filterable (``status = failed`` is the error list), with links to the
    dashboard, the CSV export and the no-good-context list."""

    list_display = (
        "created_at",
        "user",
        "provider",
        "model",
        "status",
        "error_kind",
        "prompt_tokens",
        "completion_tokens",
        "first_token_ms",
        "total_ms",
        "no_good_context",
    )
    list_filter = ("status", "provider", "no_good_context", "error_kind")
    search_fields = ("question", "user__username", "model", "error")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    readonly_fields = tuple(f.name for f in UsageRecord._meta.concrete_fields)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view  # staff only; others go to the admin's login page
        return [
            path("dashboard/", view(self.dashboard_view), name="chat_usage_dashboard"),
            path("export.csv", view(self.export_view), name="chat_usage_export"),
            path("no-context/", view(self.no_context_view), name="chat_usage_no_context"),
            *super().get_urls(),
        ]

    def _period(self, request: HttpRequest) -> usage.Period:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return usage.Period.parse(request.GET.get("start"), request.GET.get("end"))

    def _context(self, request: HttpRequest, period: usage.Period, title: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "period": period,
            "range_query": f"start={period.start.isoformat()}&end={period.end.isoformat()}",
        }

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        period = self._period(request)
        days = usage.usage_by_day(period)
        users = usage.usage_by_user(period)
        models = usage.usage_by_model(period)
        labels = [d.key for d in days]
        context = {
            **self._context(request, period, _("Usage dashboard")),
            "totals": usage.usage_totals(period),
            "days": days,
            "answers_chart": bar_chart(labels, [d.answers for d in days], [d.failed for d in days]),
            "tokens_chart": bar_chart(labels, [d.tokens for d in days]),
            "latency_chart": bar_chart(labels, [d.avg_total_ms or 0 for d in days]),
            "users": _with_share(users),
            "models": _with_share(models),
            "errors_by_kind": usage.usage_errors_by_kind(period),
            "errors": usage.usage_errors(period, limit=50),
        }
        return TemplateResponse(request, "admin/chat/usage_dashboard.html", context)

    def no_context_view(self, request: HttpRequest) -> HttpResponse:
        period = self._period(request)
        context = {
            **self._context(request, period, _("Questions that found no good context")),
            "records": usage.with_knowledge_base_names(usage.usage_no_good_context(period)),
            "threshold": usage.good_context_threshold(),
        }
        return TemplateResponse(request, "admin/chat/usage_no_context.html", context)

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        period = self._period(request)
        response = StreamingHttpResponse(
            usage.usage_csv_lines(usage.usage_csv_records(period)),
            content_type="text/csv; charset=utf-8",
        )
        name = f"usage-{period.start.isoformat()}-{period.end.isoformat()}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        period = usage.Period.last_days()
        extra = {"range_query": f"start={period.start.isoformat()}&end={period.end.isoformat()}"}
        return super().changelist_view(request, {**extra, **(extra_context or {})})


def _with_share(rows: list[usage.Row]) -> list[tuple[usage.Row, int]]:
    """Each row with its tokens as a percentage of the largest (for a bar in the table)."""
    most = max((r.tokens for r in rows), default=0) or 1
    return [(r, round(100 * r.tokens / most)) for r in rows]


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
        if not provider_secrets.secrets_enabled():
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
            saved = provider_secrets.provider_secret_set(
                name=obj.name, value=value, actor=request.user
            )
            obj.pk, obj.ciphertext = saved.pk, saved.ciphertext

    def delete_model(self, request: HttpRequest, obj: ProviderSecret) -> None:
        provider_secrets.provider_secret_delete(secret=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for secret in queryset:
            provider_secrets.provider_secret_delete(secret=secret)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not provider_secrets.secrets_enabled():
            from django.contrib import messages

            messages.warning(
                request,
                _("Set PROVIDER_SECRETS_KEY in the environment to keep provider settings here."),
            )
        return super().changelist_view(request, extra_context)
