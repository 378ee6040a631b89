"""Context of the request being served, for code far from the view.

Both live in context variables, so they follow a request through ``sync_to_async`` and into the
code it calls. The roof's ``raggen.observability.RequestIdMiddleware`` sets them."""

from __future__ import annotations

from contextvars import ContextVar

from django.http import HttpRequest

#: The request id on log lines (``-`` outside a request).
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
#: The request being served, for code far from the view that must say who acted (the audit
#: trail of a deletion); ``None`` in tasks and commands.
current_request: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)
