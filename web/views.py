"""The pages. Each view fetches what the page shows through the apps' selectors (which check
access) and renders a template; everything that changes data goes through the JSON API."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from chat import selectors as chat_selectors
from core.errors import NotFound
from documents import selectors as doc_selectors
from documents.models import Aggregation, ShareRole, SplitRule
from documents.retrieval import encoder_choices, encoder_state
from providers.registry import default_provider_name, provider_statuses
from web.js_urls import js_urls
from web.strings import js_strings

_SIDEBAR_SIZE = 100
_CHUNKS_PER_PAGE = 50


def _page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    return render(request, template, {"js_strings": js_strings(), "js_urls": js_urls(), **context})


def chat(request: HttpRequest, conversation_id: int | None = None) -> HttpResponse:
    """The chat: the conversations, the open one (if any), the knowledge bases to ask and the
    providers to answer."""
    conversation = None
    if conversation_id is not None:
        try:
            conversation = chat_selectors.conversation_get_for_user(
                conversation_id=conversation_id, user=request.user
            )
        except NotFound as exc:
            raise Http404(exc.message) from exc
    conversations = list(
        chat_selectors.conversation_list_for_user(user=request.user)[: _SIDEBAR_SIZE + 1]
    )
    more_conversations = len(conversations) > _SIDEBAR_SIZE
    conversations = conversations[:_SIDEBAR_SIZE]
    knowledge_bases = doc_selectors.knowledge_base_list_for_user(user=request.user)
    default = default_provider_name()
    providers = [{**s.__dict__, "default": s.name == default} for s in provider_statuses()]
    state = {
        "conversation": _conversation_state(conversation),
        "providers": providers,
        "defaultProvider": default,
    }
    return _page(
        request,
        "web/chat.html",
        {
            "more_conversations": more_conversations,
            "conversation": conversation,
            "conversations": conversations,
            "knowledge_bases": knowledge_bases,
            "providers": providers,
            "chat_state": state,
        },
    )


def _conversation_state(conversation: Any) -> dict[str, Any] | None:
    if conversation is None:
        return None
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "provider": conversation.provider,
        "model": conversation.model,
        "params": conversation.params,
        "knowledge_base_ids": [kb.pk for kb in conversation.knowledge_bases.all()],
        "document_ids": [d.pk for d in conversation.documents.all()],
    }


def knowledge_base_list(request: HttpRequest) -> HttpResponse:
    """The user's knowledge bases, and the form that creates one."""
    return _page(
        request,
        "web/kb_list.html",
        {
            "knowledge_bases": doc_selectors.knowledge_base_list_for_user(user=request.user),
            "split_rules": SplitRule.choices,
            "aggregations": Aggregation.choices,
            "encoders": encoder_choices(),
        },
    )


def knowledge_base_detail(request: HttpRequest, kb_id: int) -> HttpResponse:
    """One knowledge base: its documents with their progress, settings and the retrieval test."""
    try:
        kb = doc_selectors.knowledge_base_get_for_user(kb_id=kb_id, user=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    role = kb.user_role  # type: ignore[attr-defined]
    is_owner = role == "owner"
    return _page(
        request,
        "web/kb_detail.html",
        {
            "kb": kb,
            "is_owner": is_owner,
            "can_edit": role in ("owner", ShareRole.EDITOR),
            "role_label": ShareRole(role).label if role in ShareRole.values else "",
            "shares": doc_selectors.knowledge_base_share_list(kb=kb) if is_owner else [],
            "share_roles": ShareRole.choices,
            "documents": doc_selectors.document_list_for_kb(kb=kb),
            "split_rules": SplitRule.choices,
            "aggregations": Aggregation.choices,
            "encoders": encoder_choices(),
            "encoder": encoder_state(knowledge_base=kb),
        },
    )


def document_detail(request: HttpRequest, doc_id: int) -> HttpResponse:
    """One document: its metadata, a link to the original file and its chunks, paginated."""
    try:
        document = doc_selectors.document_get_for_user(doc_id=doc_id, user=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    chunks = Paginator(doc_selectors.chunk_list_for_document(document=document), _CHUNKS_PER_PAGE)
    return _page(
        request,
        "web/document.html",
        {"document": document, "chunks": chunks.get_page(request.GET.get("page"))},
    )
