"""Admin for users (activate, staff, quota override), API tokens (list and revoke; the plaintext is
never stored, so never shown) and the read-only audit trail, visible to staff. Today's usage in
the users' list is the usage app's (``usage.admin.UserUsageAdmin`` extends this admin)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.models import ApiToken, AuditEvent, UserQuota
from core.errors import InvalidInput

User = get_user_model()


class UserQuotaInline(admin.StackedInline[UserQuota, Any]):
    model = UserQuota
    can_delete = True
    max_num = 1
    extra = 1
    verbose_name = _("daily quota override")
    verbose_name_plural = _("daily quota override")


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin[Any]):
    """Django's user admin, plus: (de)activate and staff actions that call the accounts
    services, and each user's quota override inline."""

    inlines = (UserQuotaInline,)
    list_display: tuple[str, ...] = (
        "username",
        "email",
        "is_active",
        "is_staff",
        "last_login",
    )
    list_filter = ("is_active", "is_staff", "is_superuser")
    list_select_related = ("quota",)
    actions = ("activate", "deactivate", "grant_staff", "revoke_staff")

    @admin.action(description=_("Activate the selected users"))
    def activate(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._update(request, queryset, is_active=True)

    @admin.action(description=_("Deactivate the selected users"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._update(request, queryset, is_active=False)

    @admin.action(description=_("Make the selected users staff"))
    def grant_staff(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._update(request, queryset, is_staff=True)

    @admin.action(description=_("Remove staff status from the selected users"))
    def revoke_staff(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._update(request, queryset, is_staff=False)

    def _update(self, request: HttpRequest, queryset: QuerySet[Any], **flags: bool) -> None:
        try:
            changed = services.user_set_access(
                users=list(queryset), actor=request.user, request=request, **flags
            )
        except InvalidInput as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(
            request, _("%(count)d users changed.") % {"count": changed}, messages.SUCCESS
        )


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
            services.api_token_revoke(token=token, actor=request.user, request=request)
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
