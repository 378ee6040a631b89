"""Uploaded files in an S3-compatible object store (``STORAGE_URL``), against a real S3 API
server on loopback (moto's standalone server, a process of its own): upload, ingestion,
download, versions and deletion go through the store, its failures reach the user as reasons,
and nothing is written under the media folder."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.services import api_token_create
from conftest import ObjectStore, free_port, use_storage_url
from documents import ingestion, services
from documents import retrieval as search_services
from documents.models import Chunk, Document, DocumentStatus, KnowledgeBase
from documents.stored_files import (
    DAMAGED,
    MISSING,
    StorageUnavailable,
    StoredFileDamaged,
    stored_file_local_copy,
)
from documents.tests.conftest import make_docx, para
from documents.tests.helpers import DOCS, upload_bytes

pytestmark = [
    pytest.mark.s3,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fake_encoder"),
]

PREFIX = ObjectStore.prefix


@pytest.fixture
def bucket(object_store: ObjectStore) -> ObjectStore:
    return object_store


def _keys(store: ObjectStore) -> dict[str, bytes]:
    return store.objects()


def _key(document: Document) -> str:
    return f"{PREFIX}/{document.file.name}"


@pytest.fixture
def token_client(alice: Any) -> Client:
    _token, plaintext = api_token_create(user=alice, name="CI", scope="write")
    return Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")


@pytest.fixture
def kb(alice: Any) -> KnowledgeBase:
    return services.knowledge_base_create(owner=alice, name="Contracts")


def _upload(client: Client, kb: KnowledgeBase, name: str, data: bytes) -> Any:
    return client.post(
        f"/api/v1/knowledge-bases/{kb.pk}/documents", {"files": [SimpleUploadedFile(name, data)]}
    )


def _uploaded(client: Client, kb: KnowledgeBase, name: str, data: bytes) -> Document:
    response = _upload(client, kb, name, data)
    assert response.status_code == 201, response.content
    return Document.objects.get(pk=response.json()["documents"][0]["document"]["id"])


def _search(kb: KnowledgeBase, query: str) -> list[int]:
    hits = search_services.search(knowledge_bases=[kb], query=query, mode="keyword").hits
    return [hit.document_id for hit in hits]


def _nothing_under(folder: Path) -> bool:
    return not folder.exists() or not any(folder.rglob("*"))


@pytest.fixture
def temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temporary folder of this test, to see that every temporary copy is gone."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_an_upload_is_an_object_in_the_bucket_indexed_from_it_and_served_from_it(
    bucket, token_client, kb, settings, tmp_path, temp_folder
):
    docx = make_docx(tmp_path / "a.docx", para("The supplier warrants the pump for two years."))
    data = docx.read_bytes()
    document = _uploaded(token_client, kb, "contract.pdf", data)

    assert _keys(bucket) == {_key(document): data}
    assert document.file.name.startswith(f"kb/{kb.pk}/") and document.file_type == "docx"
    assert document.status == DocumentStatus.INDEXED, document.failure_reason
    assert document.chunk_count == Chunk.objects.filter(document=document).count() > 0
    assert _search(kb, "pump warrants") == [document.pk]

    response = token_client.get(f"/api/v1/documents/{document.pk}/file")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    # The type detection decided, never the name's guess (nor the object's stored type).
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert response["Content-Disposition"] == 'attachment; filename="contract.docx"'
    assert response["Content-Length"] == str(len(data))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox"
    response.close()
    assert _nothing_under(Path(settings.MEDIA_ROOT))
    assert _nothing_under(temp_folder)  # the upload's spool and the reader's copy are gone


def test_a_real_pdf_from_the_store_opens_inline(bucket, token_client, kb):
    pdf = (DOCS / "pdf" / "sample-files" / "002-trivial-libre-office-writer.pdf").read_bytes()
    document = _uploaded(token_client, kb, "manual.html", pdf)
    assert document.status == DocumentStatus.INDEXED, document.failure_reason
    response = token_client.get(f"/api/v1/documents/{document.pk}/file")
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="manual.pdf"'
    assert b"".join(response.streaming_content) == pdf


def test_deleting_a_document_or_its_knowledge_base_removes_the_objects(
    bucket, token_client, kb, alice
):
    first = _uploaded(token_client, kb, "a.txt", b"The first contract about rent.")
    second = _uploaded(token_client, kb, "b.txt", b"The second contract about lease.")
    assert set(_keys(bucket)) == {_key(first), _key(second)}

    assert token_client.delete(f"/api/v1/documents/{first.pk}").status_code == 204
    assert set(_keys(bucket)) == {_key(second)}
    assert _search(kb, "rent") == []

    assert token_client.delete(f"/api/v1/knowledge-bases/{kb.pk}").status_code == 204
    assert _keys(bucket) == {}


def test_a_new_version_replaces_the_object_once_indexed(bucket, token_client, kb, settings):
    old = _uploaded(token_client, kb, "policy.txt", b"Vacation policy: twenty days a year.")
    response = token_client.post(
        f"/api/v1/documents/{old.pk}/versions",
        {"file": SimpleUploadedFile("policy.txt", b"Vacation policy: thirty days a year.")},
    )
    assert response.status_code == 201, response.content
    new = Document.objects.get(pk=response.json()["document"]["id"])
    assert new.version == 2 and new.status == DocumentStatus.INDEXED, new.failure_reason
    assert not Document.objects.filter(pk=old.pk).exists()
    assert _keys(bucket) == {_key(new): b"Vacation policy: thirty days a year."}
    assert _search(kb, "thirty") == [new.pk]
    assert _nothing_under(Path(settings.MEDIA_ROOT))


def test_a_reindex_reads_the_same_object_again_and_keeps_it(bucket, kb):
    document = upload_bytes(kb, "a.txt", b"Delivery within ten working days.")
    fresh = services.document_reindex(document=document)
    fresh.refresh_from_db()
    assert fresh.status == DocumentStatus.INDEXED, fresh.failure_reason
    assert fresh.file.name == document.file.name
    assert set(_keys(bucket)) == {_key(fresh)}


def test_a_missing_object_fails_ingestion_and_download_with_a_reason(bucket, token_client, kb):
    result = services.document_upload(
        knowledge_base=kb, user=None, name="gone.txt", chunks=[b"Soon gone."], queue=False
    )
    document = result.document
    bucket.client.delete_object(Bucket=bucket.name, Key=_key(document))

    assert ingestion.document_ingest(document.pk) == DocumentStatus.FAILED
    document.refresh_from_db()
    assert document.failure_reason == MISSING
    assert not Chunk.objects.filter(document=document).exists()

    response = token_client.get(f"/api/v1/documents/{document.pk}/file")
    assert response.status_code == 404
    assert response.json()["detail"] == MISSING


def test_a_damaged_object_fails_ingestion_with_a_reason(bucket, kb, temp_folder):
    result = services.document_upload(
        knowledge_base=kb, user=None, name="a.txt", chunks=[b"The real text."], queue=False
    )
    document = result.document
    bucket.client.put_object(Bucket=bucket.name, Key=_key(document), Body=b"Something else.")

    assert ingestion.document_ingest(document.pk) == DocumentStatus.FAILED
    document.refresh_from_db()
    assert document.failure_reason == DAMAGED
    assert _search(kb, "something") == []
    assert _nothing_under(temp_folder)


def test_a_copy_past_its_size_or_time_is_refused_and_removed(bucket, kb, temp_folder):
    document = services.document_upload(
        knowledge_base=kb, user=None, name="a.txt", chunks=[b"x" * 4096], queue=False
    ).document
    copy = stored_file_local_copy(
        name=document.file.name, sha256=document.sha256, max_bytes=1024, timeout=60
    )
    with pytest.raises(StoredFileDamaged), copy:
        pass
    copy = stored_file_local_copy(
        name=document.file.name, sha256=document.sha256, max_bytes=8192, timeout=0
    )
    with pytest.raises(StorageUnavailable, match="longer than 0 seconds"), copy:
        pass
    with stored_file_local_copy(
        name=document.file.name, sha256=document.sha256, max_bytes=8192, timeout=60
    ) as path:
        assert path.read_bytes() == b"x" * 4096 and path.parent == temp_folder
    assert _nothing_under(temp_folder)


def test_a_missing_object_reason_is_shown_in_russian(bucket, kb, alice_client):
    result = services.document_upload(
        knowledge_base=kb, user=None, name="gone.txt", chunks=[b"Soon gone."], queue=False
    )
    bucket.client.delete_object(Bucket=bucket.name, Key=_key(result.document))
    ingestion.document_ingest(result.document.pk)
    detail = alice_client.get(
        f"/api/v1/documents/{result.document.pk}", HTTP_ACCEPT_LANGUAGE="ru"
    ).json()
    assert detail["failure_reason"] != MISSING
    assert "хранилищ" in detail["failure_reason"]


def _unreachable(settings: Any) -> None:
    use_storage_url(settings, f"s3://raggen-down?endpoint_url=http://127.0.0.1:{free_port()}")


def test_an_unreachable_store_answers_503_with_a_reason_not_a_traceback(
    bucket, token_client, kb, settings
):
    stored = _uploaded(token_client, kb, "a.txt", b"Stored before the outage.")
    _unreachable(settings)

    response = _upload(token_client, kb, "b.txt", b"Uploaded during the outage.")
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The file store cannot be reached right now; try again later."
    }
    assert list(Document.objects.values_list("pk", flat=True)) == [stored.pk]

    response = token_client.get(f"/api/v1/documents/{stored.pk}/file")
    assert response.status_code == 503
    assert "cannot be reached" in response.json()["detail"]

    # Deleting still works: the rows and the index entries go, the object is left (logged).
    assert token_client.delete(f"/api/v1/documents/{stored.pk}").status_code == 204
    assert not Document.objects.exists()

    ready = Client().get("/readyz")
    assert ready.status_code == 503 and ready.json()["failing"] == ["file_storage"]


def test_ingestion_retries_an_unreachable_store_then_fails_with_a_reason(bucket, kb, settings):
    settings.INGEST_MAX_ATTEMPTS = 2
    result = services.document_upload(
        knowledge_base=kb, user=None, name="a.txt", chunks=[b"Waiting for the store."], queue=False
    )
    _unreachable(settings)
    with pytest.raises(ingestion.TransientIngestError):
        ingestion.document_ingest(result.document.pk)
    document = Document.objects.get(pk=result.document.pk)
    assert document.status == DocumentStatus.QUEUED

    assert ingestion.document_ingest(document.pk) == DocumentStatus.FAILED
    document.refresh_from_db()
    assert document.failure_reason == (
        "The file store cannot be reached right now; try again later. (tried 2 times; retry later)"
    )


def test_readyz_checks_the_object_store(bucket, settings):
    response = Client().get("/readyz")
    assert response.json()["checks"]["file_storage"] == "ok"
    assert _keys(bucket) == {}  # the probe cleans up after itself
    assert _nothing_under(Path(settings.MEDIA_ROOT))


def test_the_admin_shows_the_stored_name_without_a_bucket_link(bucket, kb, staff_client, s3_server):
    document = upload_bytes(kb, "a.txt", b"Shown by name only.")
    page = staff_client.get(reverse("admin:documents_document_change", args=[document.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert document.file.name in html
    assert s3_server not in html and "X-Amz-Signature" not in html
