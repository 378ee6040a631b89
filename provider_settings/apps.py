from __future__ import annotations

from django.apps import AppConfig

from providers import registry


class ProviderSettingsConfig(AppConfig):
    name = "provider_settings"
    verbose_name = "Provider settings"

    def ready(self) -> None:
        from provider_settings import secrets  # reads the models: not before the apps are ready

        registry.set_overrides_source(secrets.overrides)
