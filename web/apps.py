from __future__ import annotations

from django.apps import AppConfig


class WebConfig(AppConfig):
    """The server-rendered pages: chat, knowledge bases, documents."""

    name = "web"
    default_auto_field = "django.db.models.BigAutoField"
