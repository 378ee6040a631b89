"""Per-user rate limits on Django's cache: a fixed window of one minute per user and scope.

Each request adds one to a counter keyed by scope, user (or client address) and window, with
``cache.add`` (create at 0 if missing) and ``cache.incr``. Both are atomic in local memory (one
process) and in Redis (``SET NX`` and ``INCRBY``), so with ``REDIS_URL`` set every web process
shares one count. A counter lives two windows, so it cannot expire between its ``add`` and its
``incr`` inside its own window. A fixed window lets a client make up to twice the limit across a
window boundary; that is the price of one counter per request.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _

from core.errors import ApplicationError

Scope = Literal["chat", "upload", "search", "embed"]
WINDOW = 60  # seconds


class RateLimited(ApplicationError):
    """Too many requests in the current window; ``retry_after`` is the seconds until it ends.
    The API answers 429 with a ``Retry-After`` header."""

    def __init__(self, message: str, *, limit: int, retry_after: int) -> None:
        super().__init__(
            message, {"code": "rate_limited", "limit_value": limit, "retry_after": retry_after}
        )
        self.retry_after = retry_after


def _limit(scope: Scope) -> int:
    limits = {
        "chat": settings.RATE_LIMIT_CHAT_PER_MINUTE,
        "upload": settings.RATE_LIMIT_UPLOAD_PER_MINUTE,
        "search": settings.RATE_LIMIT_SEARCH_PER_MINUTE,
        "embed": settings.RATE_LIMIT_EMBED_PER_MINUTE,
    }
    return int(limits[scope])


def rate_limit_hit(
    *, scope: str, key: str, limit: int, window: int = WINDOW, now: float | None = None
) -> int:
    """Count one request of ``key`` in ``scope`` and return the count in this window. Raises
    ``RateLimited`` when it is over ``limit`` (a refused request counts too). ``limit`` 0: no
    limit, nothing is counted."""
    if limit <= 0:
        return 0
    now = time.time() if now is None else now
    index = int(now // window)
    counter = f"ratelimit:{scope}:{key}:{window}:{index}"
    cache.add(counter, 0, timeout=2 * window)
    count = int(cache.incr(counter))
    if count > limit:
        retry_after = max(1, math.ceil((index + 1) * window - now))
        raise RateLimited(
            _("Too many requests: at most %(limit)d a minute. Try again in %(seconds)d s.")
            % {"limit": limit, "seconds": retry_after},
            limit=limit,
            retry_after=retry_after,
        )
    return count


def _key(user: Any, address: str | None) -> str:
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{address or 'unknown'}"


def rate_limit(scope: Scope, *, user: Any, address: str | None = None) -> None:
    """Count a request by ``user`` (by client ``address`` when anonymous) against the scope's
    per-minute limit from settings (``RATE_LIMIT_<SCOPE>_PER_MINUTE``; 0: none). Raises
    ``RateLimited``."""
    rate_limit_hit(scope=scope, key=_key(user, address), limit=_limit(scope))


def rate_limit_request(scope: Scope, request: Any) -> None:
    """:func:`rate_limit` for an HTTP request (its user, else its ``REMOTE_ADDR``)."""
    rate_limit(scope, user=getattr(request, "user", None), address=request.META.get("REMOTE_ADDR"))


async def rate_limit_async(scope: Scope, *, user: Any) -> None:
    """:func:`rate_limit` from async code (a consumer). A cache over the network (Redis) is
    called off the event loop; the in-process one is called directly (no I/O to wait for, and
    a hop to a thread costs a chat's first token ~0.5 ms); no limit: nothing to count."""
    if _limit(scope) <= 0:
        return
    if _in_process_cache():
        rate_limit(scope, user=user)
        return
    await sync_to_async(rate_limit, thread_sensitive=False)(scope, user=user)


def _in_process_cache() -> bool:
    backend = str(settings.CACHES.get("default", {}).get("BACKEND", ""))
    return backend.endswith(("LocMemCache", "DummyCache"))
