"""Admin for prompt templates and conversations (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from chat.models import Citation, Conversation, Message, PromptTemplate


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin[PromptTemplate]):
    list_display = ("name", "owner", "updated_at")
    list_filter = (("owner", admin.EmptyFieldListFilter),)
    search_fields = ("name", "body")


class _ReadOnly:
    """Staff may look, never change: conversations are their owners'."""

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
