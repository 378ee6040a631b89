from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Personal API tokens and the audit trail of security-relevant events."""

    name = "accounts"
    verbose_name = "Accounts and audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import signals

        signals.connect()
