"""Admin for knowledge bases and documents. Actions call the same services as the app."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from documents import services
from documents.models import Chunk, Document, KnowledgeBase


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(admin.ModelAdmin[KnowledgeBase]):
    list_display = (
        "name",
        "owner",
        "embedding_model",
        "split_rule",
        "max_chunk_tokens",
        "created_at",
    )
    list_filter = ("split_rule", "embedding_model")
    search_fields = ("name", "description", "owner__username", "owner__email")
    readonly_fields = ("embedding_model", "embedding_dimension", "created_at", "updated_at")
    actions = ("reindex", "rebuild_index")

    @admin.action(description=_("Reindex documents (chunk and embed again)"))
    def reindex(self, request: HttpRequest, queryset: QuerySet[KnowledgeBase]) -> None:
        count = sum(services.knowledge_base_reindex(kb) for kb in queryset)
        self.message_user(
            request, ngettext("%d document queued.", "%d documents queued.", count) % count
        )

    @admin.action(description=_("Rebuild the search index from the database"))
    def rebuild_index(self, request: HttpRequest, queryset: QuerySet[KnowledgeBase]) -> None:
        from embeddings.services import rebuild_index

        for kb in queryset:
            rebuild_index(kb)
        self.message_user(request, _("Search indexes rebuilt."), messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: KnowledgeBase) -> None:
        services.knowledge_base_delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[KnowledgeBase]) -> None:
        for kb in queryset:
            services.knowledge_base_delete(kb)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin[Document]):
    list_display = (
        "title",
        "knowledge_base",
        "file_type",
        "status",
        "progress",
        "page_count",
        "chunk_count",
        "version",
        "is_current",
        "created_at",
    )
    list_filter = ("status", "file_type", "is_current")
    search_fields = ("title", "original_name", "sha256", "failure_reason")
    readonly_fields = tuple(
        f.name for f in Document._meta.get_fields() if getattr(f, "concrete", False)
    )
    actions = ("retry", "reindex")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # uploads go through the app, which detects types and deduplicates

    @admin.action(description=_("Retry failed or stuck documents"))
    def retry(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            services.document_retry(document)
        self.message_user(request, _("Queued again."))

    @admin.action(description=_("Reindex documents"))
    def reindex(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset.filter(is_current=True):
            services.document_reindex(document)
        self.message_user(request, _("Reindexing queued."))

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        services.document_delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            services.document_delete(document)


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin[Chunk]):
    list_display = ("document", "ordinal", "page_start", "token_count")
    search_fields = ("text",)
    raw_id_fields = ("document", "knowledge_base")
    exclude = ("vector",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
