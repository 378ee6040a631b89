"""Admin for usage: the records (read-only: the answers write them), a dashboard with charts (per
day, per user, per provider and model, errors), a CSV export and the questions that found no good
context; and, on the users' list, today's usage against each user's daily limits. The numbers
come from :mod:`usage.selectors` and :mod:`usage.quotas`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from accounts.admin import UserAdmin
from usage import quotas, selectors
from usage.charts import bar_chart
from usage.export import usage_csv_lines, usage_csv_records
from usage.models import UsageRecord
from usage.selectors import Period, Row
from usage.services import good_context_threshold


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin[UsageRecord]):
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
        "refused",
        "grounded_share",
    )
    list_filter = ("status", "provider", "no_good_context", "refused", "error_kind")
    search_fields = ("question", "user__username", "model", "error")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    readonly_fields = tuple(f.name for f in UsageRecord._meta.concrete_fields)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        # The names keep their chat_ prefix: the pages, templates and links outside know them.
        view = self.admin_site.admin_view  # staff only; others go to the admin's login page
        return [
            path("dashboard/", view(self.dashboard_view), name="chat_usage_dashboard"),
            path("export.csv", view(self.export_view), name="chat_usage_export"),
            path("no-context/", view(self.no_context_view), name="chat_usage_no_context"),
            *super().get_urls(),
        ]

    def _period(self, request: HttpRequest) -> Period:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return Period.parse(request.GET.get("start"), request.GET.get("end"))

    def _context(self, request: HttpRequest, period: Period, title: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "period": period,
            "range_query": f"start={period.start.isoformat()}&end={period.end.isoformat()}",
        }

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        period = self._period(request)
        days = selectors.usage_by_day(period=period)
        users = selectors.usage_by_user(period=period)
        models = selectors.usage_by_model(period=period)
        labels = [d.key for d in days]
        context = {
            **self._context(request, period, _("Usage dashboard")),
            "totals": selectors.usage_totals(period=period),
            "days": days,
            "answers_chart": bar_chart(labels, [d.answers for d in days], [d.failed for d in days]),
            "tokens_chart": bar_chart(labels, [d.tokens for d in days]),
            "latency_chart": bar_chart(labels, [d.avg_total_ms or 0 for d in days]),
            "grounded_chart": bar_chart(labels, [d.grounded_percent or 0 for d in days]),
            "users": _with_share(users),
            "models": _with_share(models),
            "errors_by_kind": selectors.usage_errors_by_kind(period=period),
            "errors": selectors.usage_errors(period=period, limit=50),
        }
        return TemplateResponse(request, "admin/usage/usage_dashboard.html", context)

    def no_context_view(self, request: HttpRequest) -> HttpResponse:
        period = self._period(request)
        context = {
            **self._context(request, period, _("Questions that found no good context")),
            "records": selectors.with_knowledge_base_names(
                records=selectors.usage_no_good_context(period=period)
            ),
            "threshold": good_context_threshold(),
        }
        return TemplateResponse(request, "admin/usage/usage_no_context.html", context)

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        period = self._period(request)
        response = StreamingHttpResponse(
            usage_csv_lines(records=usage_csv_records(period=period)),
            content_type="text/csv; charset=utf-8",
        )
        name = f"usage-{period.start.isoformat()}-{period.end.isoformat()}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        period = Period.last_days()
        extra = {"range_query": f"start={period.start.isoformat()}&end={period.end.isoformat()}"}
        return super().changelist_view(request, {**extra, **(extra_context or {})})


def _with_share(rows: list[Row]) -> list[tuple[Row, int]]:
    """Each row with its tokens as a percentage of the largest (for a bar in the table)."""
    most = max((r.tokens for r in rows), default=0) or 1
    return [(r, round(100 * r.tokens / most)) for r in rows]


class UserUsageAdmin(UserAdmin):
    """The accounts' user admin, plus today's usage against each user's limits in the list
    (counted in the list's one query)."""

    list_display = (
        "username",
        "email",
        "is_active",
        "is_staff",
        "tokens_today",
        "answers_today",
        "last_login",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        day_start, _end = quotas.quota_day_bounds()
        queryset = super().get_queryset(request)
        annotated: QuerySet[Any] = queryset.annotate(
            **quotas.quota_usage_annotations(day_start=day_start)
        )
        return annotated

    @admin.display(description=_("tokens today"), ordering="tokens_today")
    def tokens_today(self, user: Any) -> str:
        return _used(user.tokens_today, _limits(user).tokens)

    @admin.display(description=_("answers today"), ordering="messages_today")
    def answers_today(self, user: Any) -> str:
        return _used(user.messages_today, _limits(user).messages)


def _limits(user: Any) -> quotas.QuotaLimits:
    return quotas.quota_limits_from_override(override=getattr(user, "quota", None))


def _used(used: int, limit: int) -> str:
    return f"{used:,} / {limit:,}" if limit else f"{used:,}"


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), UserUsageAdmin)
