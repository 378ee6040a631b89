"""The pages of the web interface; their JavaScript talks to the JSON API under /api/v1/."""

from __future__ import annotations

from django.urls import path

from web import views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/<int:conversation_id>/", views.chat, name="chat-conversation"),
    path("kb/", views.knowledge_base_list, name="kb-list"),
    path("kb/<int:kb_id>/", views.knowledge_base_detail, name="kb-detail"),
    path("documents/<int:doc_id>/", views.document_detail, name="document-detail"),
]
