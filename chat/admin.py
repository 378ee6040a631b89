from __future__ import annotations

from django.contrib import admin

from chat.models import Citation, Conversation, Message, PromptTemplate


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin[PromptTemplate]):
    list_display = ("name", "owner", "updated_at")
    list_filter = (("owner", admin.EmptyFieldListFilter),)
    search_fields = ("name", "body")


class MessageInline(admin.TabularInline[Message, Conversation]):
    model = Message
    fields = ("role", "status", "content", "provider", "model", "total_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin[Conversation]):
    list_display = ("title", "owner", "provider", "model", "updated_at")
    search_fields = ("title",)
    list_select_related = ("owner",)
    raw_id_fields = ("owner", "template")
    filter_horizontal = ("knowledge_bases", "documents")
    inlines = (MessageInline,)


class CitationInline(admin.TabularInline[Citation, Message]):
    model = Citation
    fields = ("number", "document_title", "page", "score", "quote")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    list_display = ("id", "conversation", "role", "status", "provider", "model", "created_at")
    list_filter = ("status", "role", "provider")
    search_fields = ("content",)
    raw_id_fields = ("conversation",)
    inlines = (CitationInline,)
