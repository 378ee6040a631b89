"""Every URL the pages' JavaScript uses, built with ``reverse()`` and handed to the page as one
``json_script`` dictionary (``raggen-urls``; read by ``url()`` in ``static/js/ui.js``).

A path parameter is written as a placeholder, ``/kb/{kb_id}/``, which ``url(name, params)``
fills in the browser. The JavaScript holds no URL of its own:
``web/tests/test_js_urls.py`` fails on a URL literal in ``static/js`` and on a key the
JavaScript reads that this map lacks."""

from __future__ import annotations

from functools import lru_cache

from django.urls import URLResolver, get_script_prefix, reverse
from django.urls.resolvers import RegexPattern

from chat.routing import websocket_urlpatterns as chat_sockets
from documents.routing import websocket_urlpatterns as documents_sockets

# key -> (URL name, its path parameters). Pages and the JSON API are in ROOT_URLCONF; the
# websockets in the apps' ASGI routes (chat.routing, documents.routing).
_HTTP: dict[str, tuple[str, tuple[str, ...]]] = {
    "page.chat": ("chat", ()),
    "page.conversation": ("chat-conversation", ("conversation_id",)),
    "page.kbList": ("kb-list", ()),
    "page.kb": ("kb-detail", ("kb_id",)),
    "page.document": ("document-detail", ("doc_id",)),
    "api.conversations": ("api:list_conversations", ()),
    "api.conversation": ("api:get_conversation", ("conversation_id",)),
    "api.conversationMessages": ("api:list_messages", ("conversation_id",)),
    "api.conversationExport": ("api:export_conversation", ("conversation_id",)),
    "api.promptTemplates": ("api:list_prompt_templates", ()),
    "api.knowledgeBases": ("api:list_knowledge_bases", ()),
    "api.knowledgeBase": ("api:get_knowledge_base", ("kb_id",)),
    "api.knowledgeBaseReindex": ("api:reindex_knowledge_base", ("kb_id",)),
    "api.knowledgeBaseDocuments": ("api:list_documents", ("kb_id",)),
    "api.knowledgeBaseShares": ("api:list_shares", ("kb_id",)),
    "api.knowledgeBaseShare": ("api:change_share", ("kb_id", "share_id")),
    "api.document": ("api:get_document", ("doc_id",)),
    "api.documentFile": ("api:download_document", ("doc_id",)),
    "api.documentVersions": ("api:upload_document_version", ("doc_id",)),
    "api.documentReindex": ("api:reindex_document", ("doc_id",)),
    "api.documentRetry": ("api:retry_document", ("doc_id",)),
    "api.search": ("api:search_vectors", ()),
}
_WEBSOCKETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ws.chat": ("ws-chat", ("conversation_id",)),
    "ws.progress": ("ws-kb-progress", ("kb_id",)),
}

# A path parameter is reversed with a number that cannot occur elsewhere in a path, and that
# number is then replaced by the placeholder.
_SENTINEL = 987_654_320


def js_urls() -> dict[str, str]:
    """The URL map of the current script prefix, by key."""
    return _build(prefix=get_script_prefix())


@lru_cache(maxsize=4)
def _build(*, prefix: str) -> dict[str, str]:
    sockets = URLResolver(RegexPattern(r"^/"), [*chat_sockets, *documents_sockets])
    urls: dict[str, str] = {}
    for key, (name, params) in {**_HTTP, **_WEBSOCKETS}.items():
        sentinels = {param: str(_SENTINEL + i) for i, param in enumerate(params)}
        if key in _WEBSOCKETS:
            url = prefix + sockets.reverse(name, **sentinels)
        else:
            url = reverse(name, kwargs=sentinels)
        for param, sentinel in sentinels.items():
            if url.count(sentinel) != 1:
                raise ValueError(f"{url!r}: the parameter {param!r} is not in the path once")
            url = url.replace(sentinel, "{" + param + "}")
        urls[key] = url
    return urls
