"""The chat websocket: thin, no business logic and no ORM calls.

Client → server, validated with the HTTP API's schemas (``MessageSendIn`` plus ``type``):
``{"type": "send", "content": ..., "provider": ..., "model": ..., "params": {...}}``,
``{"type": "regenerate"}`` and ``{"type": "stop"}``. Server → client: the typed events of
:func:`chat.services.message_send` (``start``, ``sources``, ``delta``, ``citations``, ``usage``,
``error``, ``done``, then ``grounding`` for a complete answer given passages), and
``{"type": "error", "message": ...}`` for a message it cannot act on.
A client that connects while an answer is being written gets that answer's events from its
start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils.translation import gettext as _
from pydantic import ValidationError

from chat import services
from chat.events import (
    ChatEvent,
    DoneEvent,
    application_error_event,
    database_unavailable_events,
    error_event,
)
from chat.schemas import SocketRegenerateIn, SocketSendIn, chat_socket_adapter
from core.errors import DATABASE_UNAVAILABLE, ApplicationError, NotFound
from core.ratelimit import rate_limit_async

logger = logging.getLogger(__name__)


class ChatConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """One conversation's chat. Closes with 4401 for an anonymous user and 4404 for a
    conversation that is not theirs. Going away stops the forwarding, not the answer: the
    answer is finished and saved by its own task; ``stop`` cancels it."""

    conversation_id: int = 0
    forwarding: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(4401)
            return
        self.conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        try:
            await services.conversation_check(user=user, conversation_id=self.conversation_id)
        except NotFound:
            await self._refuse(4404)
            return
        await self.accept()
        if services.answer_running(conversation_id=self.conversation_id):
            self._start(services.answer_follow(user=user, conversation_id=self.conversation_id))

    async def _refuse(self, code: int) -> None:
        await self.accept()  # before closing, so that the client sees the reason code
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if self.forwarding is not None:
            self.forwarding.cancel()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        try:
            message = chat_socket_adapter.validate_python(content)
        except ValidationError as exc:
            await self.send_json(error_event(_describe(exc)))
            return
        user = self.scope["user"]
        if isinstance(message, SocketSendIn | SocketRegenerateIn):
            if self.forwarding is not None and not self.forwarding.done():
                await self.send_json(error_event(_("Wait for the answer, or stop it first.")))
                return
            try:
                await rate_limit_async("chat", user=user)
            except ApplicationError as exc:
                await self._refused(exc)
                return
            options = (
                message.service_options()
                if isinstance(message, SocketSendIn)
                else {"regenerate": True}
            )
            self._start(
                services.message_send(user=user, conversation_id=self.conversation_id, **options)
            )
            return
        try:
            await services.answer_stop(user=user, conversation_id=self.conversation_id)
        except ApplicationError as exc:
            await self.send_json(error_event(exc.message))

    def _start(self, events: AsyncGenerator[ChatEvent, None]) -> None:
        self.forwarding = asyncio.create_task(self._forward(events))

    async def _forward(self, events: AsyncGenerator[ChatEvent, None]) -> None:
        try:
            async for event in events:
                await self.send_json(event)
        except ApplicationError as exc:
            await self._refused(exc)
        except DATABASE_UNAVAILABLE:
            # The database restarted or dropped the connection: say so and end the answer; the
            # next question opens a new connection.
            logger.warning("database unavailable during a chat turn", exc_info=True)
            for event in database_unavailable_events():
                await self.send_json(event)
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()

    async def _refused(self, exc: ApplicationError) -> None:
        # Refused before it started (rate limit, quota, bad knowledge base...): the answer still
        # ends, as it does over SSE, so a client always gets a ``done``.
        await self.send_json(application_error_event(exc))
        done: DoneEvent = {"type": "done", "message_id": None, "status": "failed"}
        await self.send_json(done)


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "message"
    return _("Invalid %(field)s: %(error)s.") % {
        "field": where,
        "error": first.get("msg", _("not understood")),
    }
