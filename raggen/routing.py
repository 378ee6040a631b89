"""Websocket routes of every app."""

from __future__ import annotations

from chat.routing import websocket_urlpatterns as chat_ws
from documents.routing import websocket_urlpatterns as documents_ws

websocket_urlpatterns = [*documents_ws, *chat_ws]
