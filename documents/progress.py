"""Ingestion progress to the browser: the only code that writes to the channel layer from sync
code. Events go to one group per knowledge base; ``ProgressConsumer`` forwards them."""

from __future__ import annotations

import logging
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


class ReembedPayload(TypedDict):
    """A switch of encoder re-embedding the knowledge base: ``done`` of ``total`` chunks."""

    type: Literal["reembed"]
    percent: int
    done: int
    total: int


class ProgressPayload(TypedDict):
    type: Literal["progress"]
    document_id: int
    status: str
    percent: int
    pages_done: int | None
    failure_reason: str


def group_name(kb_id: int) -> str:
    return f"kb-{kb_id}"


class ProgressManager:
    """Sends ``ingest.progress`` events for one knowledge base.

    Progress is advisory: a channel-layer failure is logged and never fails the ingestion.
    """

    def __init__(self, kb_id: int) -> None:
        self.kb_id = kb_id

    def send(
        self,
        document_id: int,
        status: str,
        percent: int,
        *,
        pages_done: int | None = None,
        failure_reason: str = "",
    ) -> None:
        payload: ProgressPayload = {
            "type": "progress",
            "document_id": document_id,
            "status": status,
            "percent": max(0, min(100, percent)),
            "pages_done": pages_done,
            "failure_reason": failure_reason,
        }
        self._group_send({"type": "ingest.progress", "payload": payload}, f"document {document_id}")

    def reembed(self, done: int, total: int) -> None:
        """Tells the knowledge base's page how far a switch of encoder has re-embedded its
        chunks (the page's "re-embedding N%")."""
        payload: ReembedPayload = {
            "type": "reembed",
            "percent": max(0, min(100, int(100 * done / total))) if total else 100,
            "done": done,
            "total": total,
        }
        self._group_send({"type": "ingest.progress", "payload": payload}, "re-embedding")

    def access_changed(self) -> None:
        """Tells the knowledge base's listeners that access was withdrawn (a share removed,
        the knowledge base deleted): each checks its user's access again and closes if gone.
        Advisory too: the listeners also check before forwarding each event."""
        self._group_send({"type": "access.changed"}, "access change")

    def _group_send(self, message: dict[str, object], what: str) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(group_name(self.kb_id), message)
        except Exception:
            logger.exception("could not send %s of knowledge base %s", what, self.kb_id)
