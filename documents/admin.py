"""Admin for knowledge bases and documents. Actions call the same services as the app."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from documents import services
from documents.models import Chunk, Document, KnowledgeBase, KnowledgeBaseShare
from documents.retrieval import index_stats, index_storage_bytes, rebuild_index


def _count(model: type[Document] | type[Chunk], **filters: Any) -> Coalesce:
    """A subquery counting ``model``'s rows of the outer knowledge base (no join fan-out)."""
    rows = (
        model._default_manager.filter(knowledge_base=OuterRef("pk"), **filters)
        .order_by()
        .values("knowledge_base")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


class KnowledgeBaseShareInline(admin.TabularInline[KnowledgeBaseShare, KnowledgeBase]):
    """Who the knowledge base is shared with. Read-only here: sharing changes go through the
    owner's sharing section (the service records each change in the audit trail)."""

    model = KnowledgeBaseShare
    fk_name = "knowledge_base"
    fields = ("user", "role", "created_by", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("shared with")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(admin.ModelAdmin[KnowledgeBase]):
    inlines = (KnowledgeBaseShareInline,)
    list_display = (
        "name",
        "owner",
        "document_count",
        "chunk_count",
        "index_size",
        "embedding_model",
        "split_rule",
        "created_at",
    )
    list_filter = ("split_rule", "embedding_model")
    list_select_related = ("owner",)
    search_fields = ("name", "description", "owner__username", "owner__email")
    readonly_fields = (
        "embedding_model",
        "embedding_dimension",
        "document_count",
        "chunk_count",
        "index_details",
        "created_at",
        "updated_at",
    )
    actions = ("reindex", "rebuild_index")

    def get_queryset(self, request: HttpRequest) -> QuerySet[KnowledgeBase]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                document_total=_count(Document, is_current=True),
                chunk_total=_count(Chunk),
            )
        )

    @admin.display(description=_("documents"), ordering="document_total")
    def document_count(self, kb: KnowledgeBase) -> int:
        return int(getattr(kb, "document_total", 0))

    @admin.display(description=_("chunks"), ordering="chunk_total")
    def chunk_count(self, kb: KnowledgeBase) -> int:
        return int(getattr(kb, "chunk_total", 0))

    @admin.display(description=_("index size"))
    def index_size(self, kb: KnowledgeBase) -> str:
        return filesizeformat(index_storage_bytes(kb_id=kb.pk))

    @admin.display(description=_("search index"))
    def index_details(self, kb: KnowledgeBase) -> str:
        if kb.pk is None:
            return "-"
        stats = index_stats(knowledge_base=kb)
        rows = (
            (_("vectors in the index"), stats.count),
            (_("chunks with a vector in the database"), stats.database_count),
            (_("deleted, not yet compacted"), stats.deleted),
            (_("segments"), stats.segments),
            (_("index type"), stats.index_type),
            (_("model"), f"{stats.model} ({stats.dimension})"),
            (_("files"), filesizeformat(stats.file_bytes)),
            (_("version"), stats.version),
        )
        return format_html_join("", "<div>{}: {}</div>", rows)

    @admin.action(description=_("Reindex documents (chunk and embed again)"))
    def reindex(self, request: HttpRequest, queryset: QuerySet[KnowledgeBase]) -> None:
        count = sum(services.knowledge_base_reindex(kb=kb) for kb in queryset)
        self.message_user(
            request, ngettext("%d document queued.", "%d documents queued.", count) % count
        )

    @admin.action(description=_("Rebuild the search index from the database"))
    def rebuild_index(self, request: HttpRequest, queryset: QuerySet[KnowledgeBase]) -> None:
        for kb in queryset:
            rebuild_index(knowledge_base=kb)
        self.message_user(request, _("Search indexes rebuilt."), messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: KnowledgeBase) -> None:
        services.knowledge_base_delete(kb=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[KnowledgeBase]) -> None:
        for kb in queryset:
            services.knowledge_base_delete(kb=kb)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin[Document]):
    list_display = (
        "title",
        "knowledge_base",
        "file_type",
        "status",
        "short_failure_reason",
        "progress",
        "page_count",
        "chunk_count",
        "version",
        "is_current",
        "created_at",
    )
    list_filter = ("status", "file_type", "is_current")
    list_select_related = ("knowledge_base",)
    search_fields = ("title", "original_name", "sha256", "failure_reason")
    # The stored file is shown by name, not linked: its storage URL would serve the original
    # past the download endpoint's decided type and headers (a signed bucket URL with
    # STORAGE_URL).
    exclude = ("file",)
    readonly_fields = tuple(
        "stored_file" if f.name == "file" else f.name
        for f in Document._meta.get_fields()
        if getattr(f, "concrete", False)
    )
    actions = ("retry", "reindex")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # uploads go through the app, which detects types and deduplicates

    @admin.display(description=_("file"))
    def stored_file(self, document: Document) -> str:
        return str(document.file.name)

    @admin.display(description=_("failure reason"), ordering="failure_reason")
    def short_failure_reason(self, document: Document) -> str:
        reason = document.failure_reason
        return reason if len(reason) <= 80 else reason[:79] + "…"

    @admin.action(description=_("Retry failed or stuck documents"))
    def retry(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            services.document_retry(document=document)
        self.message_user(request, _("Queued again."))

    @admin.action(description=_("Reindex documents"))
    def reindex(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset.filter(is_current=True):
            services.document_reindex(document=document)
        self.message_user(request, _("Reindexing queued."))

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        services.document_delete(document=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            services.document_delete(document=document)


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
