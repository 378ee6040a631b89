"""The pages for a request that failed on our side (``handler500``).

Django calls :func:`server_error` for any exception a view or middleware did not handle, inside
its ``except`` block. A database that is not answering (restarting, connection dropped) gets a
503 with ``Retry-After`` that says so; anything else a 500. An API client (a path under
``/api/`` or a request that accepts JSON and not HTML) gets JSON, a browser a page that needs no
database (no session, no user, no navigation): the page must render while the database is down.
"""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _

from core.errors import DATABASE_RETRY_AFTER, DATABASE_UNAVAILABLE, database_unavailable_message


def _wants_json(request: HttpRequest) -> bool:
    if request.path_info.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def server_error(request: HttpRequest) -> HttpResponse:
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_UNAVAILABLE):
        status, code = 503, "database_unavailable"
        title, detail = _("Service unavailable"), database_unavailable_message()
    else:
        status, code = 500, "server_error"
        title = _("Something went wrong")
        detail = _(
            "The server could not answer this request; it has been logged. Try again, and if it "
            "keeps happening tell your administrator the time it happened."
        )
    response: HttpResponse
    if _wants_json(request):
        response = JsonResponse({"detail": detail, "code": code}, status=status)
    else:
        page = loader.get_template("server_error.html").render(
            {"title": title, "detail": detail, "status": status}
        )
        response = HttpResponse(page, status=status, content_type="text/html; charset=utf-8")
    if status == 503:
        response["Retry-After"] = str(DATABASE_RETRY_AFTER)
    response["Cache-Control"] = "no-store"
    return response
