"""Every string the JavaScript shows, translated on the server and handed to the page as one
``json_script`` dictionary (``raggen-i18n``, read by ``t()`` in ``static/js/ui.js``)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import pgettext


def js_strings() -> dict[str, str]:
    """The translated JavaScript strings of the current language, by key."""
    return {
        "newConversation": _("New conversation"),
        "untitled": _("Untitled conversation"),
        "rename": _("Rename"),
        "renamePrompt": _("New name of the conversation:"),
        "delete": _("Delete"),
        "deleteConversation": _("Delete this conversation and its messages?"),
        "noConversations": _("No conversations yet."),
        "you": _("You"),
        "assistant": _("Assistant"),
        "copy": _("Copy"),
        "copied": _("Copied"),
        "regenerate": _("Regenerate"),
        "stop": _("Stop"),
        "stopped": _("Stopped."),
        "thinking": _("Searching the documents…"),
        "sourceTitle": _("Source [%(n)s]"),
        "page": _("page %(n)s"),
        "openOriginal": _("Open the original file at this page"),
        "openOriginalNoPage": _("Open the original file"),
        "noDocument": _("The document of this passage was deleted."),
        "connectionLost": _("The connection was lost. Reload the page to continue."),
        "notGrounded": _("Not found in the sources"),
        "failed": _("The answer failed."),
        "noTemplates": _("No prompt templates."),
        "usage": _("%(model)s · tokens: %(tokens)s · %(seconds)s s"),
        "notConfigured": _("not configured"),
        "saved": _("Saved."),
        "savedReindexing": _("Saved. The documents are being re-indexed."),
        "reembedding": _("re-embedding %(percent)s"),  # percent: "62%"
        "confirmDeleteKb": _(
            "Delete the knowledge base “%(name)s” with all its documents and its index?"
            " This cannot be undone."
        ),
        "confirmDeleteDocument": _("Delete the document “%(name)s”?"),
        "uploading": _("Uploading…"),
        "uploadFailed": _("Upload failed: %(reason)s"),
        "duplicate": _("already in this knowledge base"),
        "reindexQueued": _("Queued for re-indexing."),
        "noHits": _("Nothing found."),
        "roleOf": _("Role of %(name)s"),
        "remove": _("Remove"),
        "dense": pgettext("score", "dense"),
        "keyword": pgettext("score", "keyword"),
        "fused": pgettext("score", "fused"),
        "status_queued": _("Queued"),
        "status_extracting": _("Extracting text"),
        "status_chunking": _("Chunking"),
        "status_embedding": _("Embedding"),
        "status_indexed": _("Indexed"),
        "status_failed": _("Failed"),
        "pagesDone": _("Pages read: %(n)s"),
        "newVersion": _("New version"),
        "reindex": _("Re-index"),
        "retry": _("Retry"),
        "chunks": _("Chunks: %(n)s"),
        "pages": _("Pages: %(n)s"),
        "version": _("version %(n)s"),
    }
