"""Websocket consumers of the documents app: thin, no business logic."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from core.errors import NotFound
from documents.progress import group_name
from documents.reasons import translate_reason
from documents.selectors import knowledge_base_get_for_user


class ProgressConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Forwards a knowledge base's ingestion progress to a signed-in user who may read it.

    Closes with 4401 for an anonymous user and 4404 for a knowledge base the user cannot see,
    at connect and whenever access is lost later (a share withdrawn, the knowledge base
    deleted). Access is checked again before each event is forwarded, so a withdrawn user
    gets nothing even if the ``access.changed`` notice is lost (channels-redis drops
    messages to a full channel); the notice only makes the close immediate.
    """

    group: str | None = None
    kb_id: int = 0

    async def connect(self) -> None:
        user = self.scope.get("user")
        # Accept before closing so that the client sees the reason code.
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=4401)
            return
        self.kb_id = int(self.scope["url_route"]["kwargs"]["kb_id"])
        if not await self._allowed():
            await self.accept()
            await self.close(code=4404)
            return
        self.group = group_name(self.kb_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def ingest_progress(self, event: dict[str, Any]) -> None:
        if not await self._still_allowed():
            return
        payload = event["payload"]
        if payload.get("failure_reason"):  # stored in English: in this reader's language
            payload = {**payload, "failure_reason": translate_reason(payload["failure_reason"])}
        await self.send_json(payload)

    async def access_changed(self, event: dict[str, Any]) -> None:
        await self._still_allowed()

    async def _allowed(self) -> bool:
        try:
            await database_sync_to_async(knowledge_base_get_for_user)(
                kb_id=self.kb_id, user=self.scope["user"]
            )
        except NotFound:
            return False
        return True

    async def _still_allowed(self) -> bool:
        """Whether the user may still read the knowledge base; closes the socket (4404) if
        not."""
        if self.group is None:  # already closed for lost access
            return False
        if await self._allowed():
            return True
        await self._leave()
        await self.close(code=4404)
        return False

    async def _leave(self) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
