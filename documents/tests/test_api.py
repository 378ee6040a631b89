"""The documents API through Django's client (session auth, multipart uploads)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from documents.models import Document, DocumentStatus, KnowledgeBase
from documents.tests.helpers import DOCS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_encoder")]


@pytest.fixture
def kb_id(alice_client: Any) -> int:
    response = alice_client.post(
        "/api/v1/knowledge-bases", {"name": "Legal"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def _upload(client: Any, kb_id: int, *files: tuple[str, bytes]) -> Any:
    return client.post(
        f"/api/v1/knowledge-bases/{kb_id}/documents",
        {"files": [SimpleUploadedFile(name, data) for name, data in files]},
    )


def test_create_list_and_update_a_knowledge_base(alice_client, kb_id):
    listed = alice_client.get("/api/v1/knowledge-bases").json()
    assert [kb["name"] for kb in listed] == ["Legal"]
    response = alice_client.patch(
        f"/api/v1/knowledge-bases/{kb_id}",
        {"description": "Contracts"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["knowledge_base"]["description"] == "Contracts"
    assert response.json()["reindexing"] is False


def test_a_duplicate_knowledge_base_name_is_a_409(alice_client, kb_id):
    response = alice_client.post(
        "/api/v1/knowledge-bases", {"name": "Legal"}, content_type="application/json"
    )
    assert response.status_code == 409
    assert "already have a knowledge base named 'Legal'" in response.json()["detail"]


def test_bad_settings_are_a_422_naming_the_field(alice_client):
    response = alice_client.post(
        "/api/v1/knowledge-bases",
        {"name": "X", "max_chunk_tokens": 5},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert "max_chunk_tokens" in response.content.decode()


def test_upload_several_files_returns_each_document_and_status(alice_client, kb_id):
    pdf = (DOCS / "pdf" / "sample-files" / "002-trivial-libre-office-writer.pdf").read_bytes()
    response = _upload(
        alice_client, kb_id, ("one.pdf", pdf), ("two.txt", "Привет, мир. Договор.".encode())
    )
    assert response.status_code == 201, response.content
    items = response.json()["documents"]
    assert [i["name"] for i in items] == ["one.pdf", "two.txt"]
    assert [i["document"]["file_type"] for i in items] == ["pdf", "txt"]
    assert all(i["document"]["id"] and not i["duplicate"] for i in items)
    listed = alice_client.get(f"/api/v1/knowledge-bases/{kb_id}/documents").json()
    assert listed["count"] == 2
    assert {d["status"] for d in listed["items"]} == {DocumentStatus.INDEXED}
    assert all(d["chunk_count"] > 0 for d in listed["items"])


def test_uploading_the_same_file_again_is_a_409_naming_the_existing_document(alice_client, kb_id):
    first = _upload(alice_client, kb_id, ("a.txt", b"Same content.")).json()["documents"][0]
    response = _upload(alice_client, kb_id, ("b.txt", b"Same content."))
    assert response.status_code == 409
    body = response.json()
    assert body["existing_document_ids"] == [first["document"]["id"]]
    assert "a.txt" in body["detail"]


def test_a_file_over_the_limit_is_a_413(alice_client, kb_id, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    response = _upload(alice_client, kb_id, ("big.txt", b"x" * 2048))
    assert response.status_code == 413
    assert "big.txt is larger than" in response.json()["detail"]
    assert not Document.objects.exists()


def test_an_unsupported_file_is_a_422_with_the_reason(alice_client, kb_id):
    response = _upload(alice_client, kb_id, ("x.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64))
    assert response.status_code == 422
    assert "PNG image" in response.json()["detail"]


def test_document_detail_lists_its_chunks_and_delete_removes_it(alice_client, kb_id):
    doc = _upload(alice_client, kb_id, ("a.txt", b"Alpha.\n\nBeta gamma delta.")).json()[
        "documents"
    ][0]
    doc_id = doc["document"]["id"]
    detail = alice_client.get(f"/api/v1/documents/{doc_id}").json()
    assert detail["chunks_total"] == len(detail["chunks"]) > 0
    assert "Alpha." in detail["chunks"][0]["text"]
    assert alice_client.delete(f"/api/v1/documents/{doc_id}").status_code == 204
    assert alice_client.get(f"/api/v1/documents/{doc_id}").status_code == 404


def test_the_original_file_downloads_and_a_pdf_opens_inline(alice_client, kb_id):
    pdf = (DOCS / "pdf" / "sample-files" / "002-trivial-libre-office-writer.pdf").read_bytes()
    doc_id = _upload(alice_client, kb_id, ("one.pdf", pdf)).json()["documents"][0]["document"]["id"]
    response = alice_client.get(f"/api/v1/documents/{doc_id}/file")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline")
    assert b"".join(response.streaming_content) == pdf


def test_a_new_version_replaces_the_document(alice_client, kb_id):
    doc_id = _upload(alice_client, kb_id, ("a.txt", b"Version one.")).json()["documents"][0][
        "document"
    ]["id"]
    response = alice_client.post(
        f"/api/v1/documents/{doc_id}/versions",
        {"file": SimpleUploadedFile("a.txt", b"Version two.")},
    )
    assert response.status_code == 201, response.content
    new = alice_client.get(f"/api/v1/documents/{response.json()['document']['id']}").json()
    assert new["version"] == 2 and new["status"] == DocumentStatus.INDEXED
    assert alice_client.get(f"/api/v1/documents/{doc_id}").status_code == 404


def test_other_users_get_404_and_anonymous_users_401(client, bob, alice_client, kb_id):
    doc_id = _upload(alice_client, kb_id, ("a.txt", b"Private.")).json()["documents"][0][
        "document"
    ]["id"]
    anonymous = client.__class__()
    assert anonymous.get(f"/api/v1/knowledge-bases/{kb_id}").status_code == 401
    assert anonymous.get(f"/api/v1/documents/{doc_id}/file").status_code == 401
    other = client.__class__()
    other.force_login(bob)
    assert other.get(f"/api/v1/knowledge-bases/{kb_id}").status_code == 404
    assert other.get(f"/api/v1/documents/{doc_id}").status_code == 404
    assert other.delete(f"/api/v1/documents/{doc_id}").status_code == 404
    assert _upload(other, kb_id, ("b.txt", b"intrusion")).status_code == 404
    assert other.get("/api/v1/knowledge-bases").json() == []
    assert Document.objects.count() == 1


def test_deleting_a_knowledge_base_removes_everything(alice_client, kb_id, settings):
    _upload(alice_client, kb_id, ("a.txt", b"Something."))
    assert alice_client.delete(f"/api/v1/knowledge-bases/{kb_id}").status_code == 204
    assert not KnowledgeBase.objects.exists() and not Document.objects.exists()
    assert not any((settings.MEDIA_ROOT / "kb" / str(kb_id)).rglob("*.txt"))


def test_a_new_knowledge_base_takes_the_deployments_default_search_weights(alice_client, settings):
    settings.HYBRID_DENSE_WEIGHT = 0.5
    settings.HYBRID_KEYWORD_WEIGHT = 2.0
    response = alice_client.post(
        "/api/v1/knowledge-bases", {"name": "Weighted"}, content_type="application/json"
    )
    assert (response.json()["dense_weight"], response.json()["keyword_weight"]) == (0.5, 2.0)
    response = alice_client.post(
        "/api/v1/knowledge-bases",
        {"name": "Own", "dense_weight": 1.5},
        content_type="application/json",
    )
    assert (response.json()["dense_weight"], response.json()["keyword_weight"]) == (1.5, 2.0)
