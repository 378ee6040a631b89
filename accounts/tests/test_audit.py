"""The audit trail: sign-in, failed sign-in, sign-out, tokens and deletions are recorded, and
only staff can read it."""

from __future__ import annotations

import pytest

from accounts.models import AuditAction, AuditEvent
from accounts.services import api_token_create, api_token_revoke, audit
from documents import services as document_services
from web.tests.factories import make_document, make_kb

pytestmark = pytest.mark.django_db


def _only(action: str) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, [e.action for e in AuditEvent.objects.all()]
    return events[0]


def test_signing_in_is_recorded_with_ip_and_user_agent(client, alice, password):
    response = client.post(
        "/accounts/login/",
        {"login": "alice", "password": password},
        HTTP_USER_AGENT="pytest-browser/1.0",
        REMOTE_ADDR="10.1.2.3",
    )

    assert response.status_code == 302
    event = _only(AuditAction.LOGIN)
    assert event.actor == alice
    assert event.ip == "10.1.2.3"
    assert event.user_agent == "pytest-browser/1.0"


def test_a_failed_sign_in_records_the_name_but_not_the_password(client, alice):
    response = client.post("/accounts/login/", {"login": "alice", "password": "wrong-guess-77"})

    assert response.status_code == 200
    event = _only(AuditAction.LOGIN_FAILED)
    assert event.actor is None
    assert event.target == "alice"
    assert "wrong-guess-77" not in str(event.details) + event.target
    assert not AuditEvent.objects.filter(action=AuditAction.LOGIN).exists()


def test_signing_out_is_recorded(alice_client, alice):
    response = alice_client.post("/accounts/logout/")

    assert response.status_code == 302
    assert _only(AuditAction.LOGOUT).actor == alice


def test_creating_and_revoking_a_token_are_recorded(alice, rf):
    request = rf.post("/", REMOTE_ADDR="192.0.2.7")
    token, plaintext = api_token_create(user=alice, name="CI", scope="write", request=request)
    api_token_revoke(token=token, actor=alice, request=request)
    api_token_revoke(token=token, actor=alice, request=request)

    created = _only(AuditAction.TOKEN_CREATED)
    revoked = _only(AuditAction.TOKEN_REVOKED)
    assert created.actor == revoked.actor == alice
    assert created.ip == "192.0.2.7"
    assert created.details["scope"] == "write"
    assert plaintext.split("_", 2)[2] not in str(created.details) + created.target
    assert revoked.details["token_id"] == token.pk


def test_revoking_through_the_api_records_who_did_it(alice_client, alice, write_token):
    alice_client.delete(f"/api/v1/tokens/{write_token[0].pk}")

    assert _only(AuditAction.TOKEN_REVOKED).actor == alice


def test_deleting_a_document_is_recorded(alice):
    document = make_document(make_kb(alice), "secret plan")
    document_id = document.pk

    document_services.document_delete(document=document)

    event = _only(AuditAction.DOCUMENT_DELETED)
    assert event.target == f"secret plan (#{document_id})"
    assert event.details["knowledge_base_id"] == document.knowledge_base_id


def test_deleting_a_document_through_the_api_records_who_and_from_where(alice_client, alice):
    document = make_document(make_kb(alice), "minutes")

    response = alice_client.delete(
        f"/api/v1/documents/{document.pk}", REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="curl/8"
    )

    assert response.status_code == 204
    event = _only(AuditAction.DOCUMENT_DELETED)
    assert (event.actor, event.ip, event.user_agent) == (alice, "10.1.2.3", "curl/8")


def test_a_deletion_outside_a_request_has_no_actor(alice):
    document_services.document_delete(document=make_document(make_kb(alice), "nightly"))

    assert _only(AuditAction.DOCUMENT_DELETED).actor is None


def test_deleting_a_knowledge_base_is_recorded_with_its_documents(alice):
    kb = make_kb(alice, "Handbook")
    make_document(kb, "guide")

    document_services.knowledge_base_delete(kb=kb)

    assert _only(AuditAction.KNOWLEDGE_BASE_DELETED).details["owner_id"] == alice.pk
    assert _only(AuditAction.DOCUMENT_DELETED).target.startswith("guide")


def test_an_anonymous_actor_is_recorded_as_none(rf):
    from django.contrib.auth.models import AnonymousUser

    event = audit(action=AuditAction.SHARING_CHANGED, actor=AnonymousUser(), target="kb 1")

    assert event.actor is None


def test_anonymous_visitors_cannot_see_the_audit_list(client):
    response = client.get("/admin/accounts/auditevent/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_user_who_is_not_staff_cannot_see_the_audit_list(alice_client):
    response = alice_client.get("/admin/accounts/auditevent/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_see_the_audit_list_read_only(client, alice, bob):
    bob.is_staff = True
    bob.save()
    audit(action=AuditAction.LOGIN, actor=alice, target="alice")
    client.force_login(bob)

    listing = client.get("/admin/accounts/auditevent/?action=login")
    event = AuditEvent.objects.get(action=AuditAction.LOGIN, actor=alice)
    change = client.post(f"/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    assert "alice" in listing.content.decode()
    assert change.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
