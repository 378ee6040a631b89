from __future__ import annotations

from django.urls import path

from documents.consumers import ProgressConsumer

websocket_urlpatterns = [
    path("ws/kb/<int:kb_id>/progress/", ProgressConsumer.as_asgi(), name="ws-kb-progress"),
]
