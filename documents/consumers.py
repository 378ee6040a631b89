"""Websocket consumers of the documents app: thin, no business logic."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from documents.progress import group_name
from documents.reasons import translate_reason
from documents.selectors import knowledge_base_get_for_user
from raggen.errors import NotFound


class ProgressConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Forwards a knowledge base's ingestion progress to a signed-in user who may read it.

    Closes with 4401 for an anonymous user and 4404 for a knowledge base the user cannot see.
    """

    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        # Accept before closing so that the client sees the reason code.
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=4401)
            return
        kb_id = int(self.scope["url_route"]["kwargs"]["kb_id"])
        try:
            await database_sync_to_async(knowledge_base_get_for_user)(kb_id, user)
        except NotFound:
            await self.accept()
            await self.close(code=4404)
            return
        self.group = group_name(kb_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def ingest_progress(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if payload.get("failure_reason"):  # stored in English: in this reader's language
            payload = {**payload, "failure_reason": translate_reason(payload["failure_reason"])}
        await self.send_json(payload)
