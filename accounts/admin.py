"""Admin for API tokens (list and revoke; the plaintext is never stored, so never shown) and the
read-only audit trail, visible to staff."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.models import ApiToken, AuditEvent


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    list_display = (
        "name",
        "user",
        "prefix",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("scope", "created_at", "revoked_at")
    search_fields = ("name", "prefix", "user__username", "user__email")
    list_select_related = ("user",)
    fields = list_display
    readonly_fields = list_display
    actions = ("revoke",)

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            services.api_token_revoke(token, actor=request.user, request=request)
        self.message_user(request, _("Tokens revoked."), messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A token made here would have to show its plaintext in the admin: users make their own.
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """The audit trail: read-only, for staff. Nobody adds, edits or deletes events here."""

    list_display = ("created_at", "action", "actor", "target", "ip")
    list_filter = ("action", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("target", "actor__username", "ip")
    list_select_related = ("actor",)
    fields = ("created_at", "action", "actor", "target", "ip", "user_agent", "details")
    readonly_fields = fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_staff(request)

    def has_view_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return _is_staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


def _is_staff(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)
