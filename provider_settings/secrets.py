"""Provider settings managed in the admin: encrypted at rest (Fernet, with a key derived from
``PROVIDER_SECRETS_KEY``), handed to ``providers.registry`` as overrides of the environment.

Reads are served from a per-process snapshot, refreshed every few seconds and at once after a
change made in this process; other processes see a change within :data:`REFRESH_SECONDS`. The
snapshot can be refreshed from async code too: the query runs on a worker thread."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import close_old_connections
from django.utils.translation import gettext as _

from core.errors import InvalidInput
from provider_settings.models import ProviderSecret
from providers.registry import MANAGED_SETTINGS

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 10.0
_lock = threading.Lock()
_snapshot: dict[str, str] = {}
_loaded_at = float("-inf")
_loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raggen-provider-secrets")
_pending: Future[None] | None = None


def _fernet() -> Fernet | None:
    key = settings.PROVIDER_SECRETS_KEY
    if not key:
        return None
    digest = hashlib.sha256(key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def secrets_enabled() -> bool:
    """Whether settings can be managed in the admin (a key is configured)."""
    return _fernet() is not None


def provider_secret_set(*, name: str, value: str, actor: Any = None) -> ProviderSecret:
    """Store ``value`` for the managed setting ``name``, encrypted. Raises :class:`InvalidInput`
    for an unknown name, an empty value, or when no ``PROVIDER_SECRETS_KEY`` is configured."""
    fernet = _fernet()
    if fernet is None:
        raise InvalidInput(
            _("Set PROVIDER_SECRETS_KEY in the environment to keep provider settings here.")
        )
    if name not in MANAGED_SETTINGS:
        raise InvalidInput(_("%(name)s cannot be set here.") % {"name": name})
    value = value.strip()
    if not value:
        raise InvalidInput(_("The value cannot be empty; delete the setting instead."))
    secret, _created = ProviderSecret.objects.update_or_create(
        name=name,
        defaults={
            "ciphertext": fernet.encrypt(value.encode()).decode(),
            "updated_by": actor if getattr(actor, "is_authenticated", False) else None,
        },
    )
    refresh()
    return secret


def provider_secret_delete(*, secret: ProviderSecret) -> None:
    secret.delete()
    refresh()


def _load() -> dict[str, str]:
    fernet = _fernet()
    if fernet is None:
        return {}
    values: dict[str, str] = {}
    try:
        rows = list(ProviderSecret.objects.values_list("name", "ciphertext"))
    finally:
        if threading.current_thread().name.startswith("raggen-provider-secrets"):
            close_old_connections()
    for name, ciphertext in rows:
        try:
            values[name] = fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            # Never the value itself: only which setting could not be read.
            logger.warning(
                "provider setting %s cannot be decrypted with PROVIDER_SECRETS_KEY; ignored", name
            )
    return values


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def refresh() -> None:
    """Reload the snapshot now (from sync or async code)."""
    global _snapshot, _loaded_at
    values = _loader.submit(_load).result() if _in_event_loop() else _load()
    with _lock:
        _snapshot, _loaded_at = values, time.monotonic()


def _refresh_logged() -> None:
    try:
        refresh()
    except Exception:  # a missing table during migrate, a database hiccup
        logger.exception("provider settings could not be loaded; using the environment")


def _refresh_in_background() -> None:
    """Start a reload on the loader thread unless one is under way; the event loop does not
    wait for it (every answer asks for a provider: one in ten seconds would wait for a query)."""
    global _pending
    with _lock:
        if _pending is not None and not _pending.done():
            return
        _pending = _loader.submit(_refresh_logged)


def overrides() -> Mapping[str, str]:
    """The decrypted managed settings (the registry's overrides source). In the event loop a
    stale snapshot is served while it is reloaded in the background; only the first load
    waits."""
    if time.monotonic() - _loaded_at > REFRESH_SECONDS:
        if _in_event_loop() and _loaded_at != float("-inf"):
            _refresh_in_background()
        else:
            _refresh_logged()
    return dict(_snapshot)
