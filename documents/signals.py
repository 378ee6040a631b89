"""Signals the documents app sends for others to act on (the audit trail listens), so that this
app does not need to know who records what."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent after a knowledge base's sharing changed, with ``knowledge_base``, ``actor`` (who changed
#: it), ``user`` (whose access changed), ``before`` and ``after`` (roles; ``None`` = no access).
sharing_changed = Signal()
