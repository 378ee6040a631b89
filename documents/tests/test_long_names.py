"""A 240-character Cyrillic file name is an ordinary upload, never a 500: the stored name is
bounded in bytes, the title keeps whole words."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.services import api_token_create
from documents.models import Document, KnowledgeBase

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_encoder")]

SENTENCE = "Протокол заседания комиссии по вопросам охраны труда и промышленной безопасности"
LONG_STEM = " ".join([SENTENCE] * 4)[:240].rstrip()
LONG_NAME = LONG_STEM + ".txt"
MAX_NAME_BYTES = 200  # documents.detect.MAX_NAME_BYTES


def _assert_bounded(document: Document) -> None:
    stored = PurePosixPath(document.file.name).name
    assert len(stored.encode()) <= MAX_NAME_BYTES and stored.endswith(".txt")
    # a prefix (the storage writes spaces as "_"), no character split
    assert LONG_STEM.replace(" ", "_").startswith(stored.removesuffix(".txt"))
    title_words = document.title.removesuffix("…").split()
    assert title_words and title_words == LONG_STEM.split()[: len(title_words)]  # whole words
    assert document.file.read() == "Текст документа.".encode()


def _upload(client: Client, kb_id: int) -> Any:
    return client.post(
        f"/api/v1/knowledge-bases/{kb_id}/documents",
        {"files": [SimpleUploadedFile(LONG_NAME, "Текст документа.".encode())]},
    )


def test_a_long_cyrillic_name_uploads_through_the_api_with_a_token(alice: Any) -> None:
    kb = KnowledgeBase.objects.create(owner=alice, name="Протоколы")
    _token, plaintext = api_token_create(user=alice, name="CI", scope="write")
    response = _upload(Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}"), kb.pk)
    assert response.status_code == 201, response.content
    _assert_bounded(Document.objects.get(pk=response.json()["documents"][0]["document"]["id"]))


def test_a_long_cyrillic_name_uploads_through_the_web_pages_session(alice: Any) -> None:
    """The knowledge-base page uploads with the session and its CSRF token (``upload()`` in
    static/js/ui.js)."""
    kb = KnowledgeBase.objects.create(owner=alice, name="Протоколы")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get(f"/kb/{kb.pk}/")
    response = client.post(
        f"/api/v1/knowledge-bases/{kb.pk}/documents",
        {"files": [SimpleUploadedFile(LONG_NAME, "Текст документа.".encode())]},
        headers={"X-CSRFToken": client.cookies["csrftoken"].value},
    )
    assert response.status_code == 201, response.content
    _assert_bounded(Document.objects.get(pk=response.json()["documents"][0]["document"]["id"]))
    page = client.get(f"/kb/{kb.pk}/")
    assert page.status_code == 200
    assert Document.objects.get().title in page.content.decode()
