"""The admin of knowledge bases and documents (stats, reindex, rebuild, retry through the app's
services, with ingestion run eagerly). The providers page is ``provider_settings``'s."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from documents import retrieval as search_services
from documents import services
from documents.models import Chunk, Document, DocumentStatus, KnowledgeBase
from documents.retrieval import local
from documents.tests.helpers import upload_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_encoder")]

HANDBOOK = (
    b"Invoices are paid within 30 days of receipt by bank transfer.\n\n"
    b"The office is open from 9 to 18 on working days.\n\n"
    b"Vacation requests are approved by the team lead two weeks in advance.\n"
)


@pytest.fixture
def kb(alice: Any) -> KnowledgeBase:
    return services.knowledge_base_create(owner=alice, name="Handbook")


@pytest.fixture
def document(kb: KnowledgeBase, alice: Any) -> Document:
    document = upload_bytes(kb, "handbook.txt", HANDBOOK, user=alice)
    assert document.status == DocumentStatus.INDEXED  # ingested eagerly on commit
    return document


def run_action(client: Any, model: str, action: str, ids: list[int]) -> Any:
    return client.post(
        reverse(f"admin:documents_{model}_changelist"),
        {"action": action, helpers.ACTION_CHECKBOX_NAME: [str(i) for i in ids]},
        follow=True,
    )


def test_the_knowledge_base_list_shows_documents_chunks_and_index_size(
    staff_client, kb, document, alice
):
    empty = services.knowledge_base_create(owner=alice, name="Empty")
    chunks = Chunk.objects.filter(knowledge_base=kb).count()

    response = staff_client.get(reverse("admin:documents_knowledgebase_changelist"))

    assert response.status_code == 200 and chunks > 0
    rows = {kb.name: kb for kb in response.context["cl"].result_list}
    admin = response.context["cl"].model_admin
    assert (admin.document_count(rows["Handbook"]), admin.chunk_count(rows["Handbook"])) == (
        1,
        chunks,
    )
    assert (admin.document_count(rows["Empty"]), admin.chunk_count(rows["Empty"])) == (0, 0)
    assert admin.index_size(rows["Handbook"]) != "0\xa0bytes"
    assert admin.index_size(rows["Empty"]) == "0\xa0bytes"
    assert empty.pk in {r.pk for r in rows.values()}


def test_the_knowledge_base_page_shows_its_index_statistics(staff_client, kb, document):
    chunks = Chunk.objects.filter(knowledge_base=kb).count()

    response = staff_client.get(reverse("admin:documents_knowledgebase_change", args=[kb.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert f"vectors in the index: {chunks}" in html
    assert f"chunks with a vector in the database: {chunks}" in html


@pytest.mark.local_index
def test_rebuild_index_action_rebuilds_the_missing_index_files(staff_client, kb, document):
    folder = local.index_folder(kb.pk)
    chunks = Chunk.objects.filter(knowledge_base=kb).count()
    shutil.rmtree(folder)

    response = run_action(staff_client, "knowledgebase", "rebuild_index", [kb.pk])

    assert response.status_code == 200
    assert folder.is_dir() and any(folder.iterdir()), "the index files were written again"
    assert search_services.index_stats(knowledge_base=kb).count == chunks
    hits = search_services.search(knowledge_bases=[kb], query="invoices paid", top_k=1).hits
    assert hits and hits[0].text.startswith("Invoices are paid")


def test_reindex_action_builds_a_new_version_of_each_document_through_the_service(
    staff_client, kb, document
):
    response = run_action(staff_client, "knowledgebase", "reindex", [kb.pk])

    assert "1 document queued." in response.content.decode()
    current = Document.objects.get(knowledge_base=kb, is_current=True)
    assert current.pk != document.pk and current.version == document.version
    assert not Document.objects.filter(pk=document.pk).exists()  # swapped out, then deleted
    assert current.status == DocumentStatus.INDEXED and current.chunk_count
    hits = search_services.search(knowledge_bases=[kb], query="office open", top_k=3).hits
    assert {h.document_id for h in hits} == {current.pk}


def test_retry_action_queues_a_failed_document_again_and_it_is_indexed(staff_client, kb, document):
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.FAILED, failure_reason="The worker died."
    )
    listing = staff_client.get(reverse("admin:documents_document_changelist"))
    assert "The worker died." in listing.content.decode()

    run_action(staff_client, "document", "retry", [document.pk])

    document.refresh_from_db()
    assert (document.status, document.failure_reason) == (DocumentStatus.INDEXED, "")
    assert document.chunk_count and Chunk.objects.filter(document=document).exists()


def test_non_staff_cannot_run_admin_actions(alice_client, kb, document):
    response = alice_client.post(
        reverse("admin:documents_knowledgebase_changelist"),
        {"action": "reindex", helpers.ACTION_CHECKBOX_NAME: [str(kb.pk)]},
    )

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert Document.objects.filter(knowledge_base=kb).count() == 1


def test_the_knowledge_base_page_lists_its_shares_read_only(staff_client, kb, alice, bob):
    services.knowledge_base_share(knowledge_base=kb, actor=alice, user="bob", role="editor")

    response = staff_client.get(reverse("admin:documents_knowledgebase_change", args=[kb.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "shared with" in html.lower()
    assert "bob" in html and "Editor (upload, delete, settings)" in html
    # No form fields for the shares: changes go through the audited service only.
    assert 'name="shares-0-role"' not in html
