"""Websocket routes of every app."""

from __future__ import annotations

from documents.routing import websocket_urlpatterns as documents_ws

websocket_urlpatterns = [*documents_ws]
