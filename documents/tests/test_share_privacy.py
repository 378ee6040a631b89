"""Sharing never tells whether an account exists: an unknown e-mail or user name gets exactly
the answer a known one gets."""

from __future__ import annotations

from typing import Any

import pytest

from documents.models import KnowledgeBase, KnowledgeBaseShare

pytestmark = pytest.mark.django_db


def _share(client: Any, kb: KnowledgeBase, user: str) -> Any:
    return client.post(
        f"/api/v1/knowledge-bases/{kb.pk}/shares",
        {"user": user, "role": "viewer"},
        content_type="application/json",
    )


def test_an_unknown_email_gets_exactly_the_answer_a_known_one_gets(
    alice_client: Any, alice: Any, bob: Any, django_user_model: Any
) -> None:
    kb = KnowledgeBase.objects.create(owner=alice, name="Docs")
    django_user_model.objects.create_user("carol", "carol@example.com", is_active=False)
    known = _share(alice_client, kb, "bob@example.com")
    answers = [
        _share(alice_client, kb, name)
        for name in ("nobody@example.com", "carol@example.com", "nobody-here", "BOB@example.com")
    ]
    for answer in answers:
        assert (answer.status_code, answer.content) == (known.status_code, known.content)
        assert answer["Content-Type"] == known["Content-Type"]
    assert known.status_code == 202
    assert list(KnowledgeBaseShare.objects.values_list("user__username", "role")) == [
        ("bob", "viewer")
    ]


def test_the_owners_own_name_and_a_bad_role_still_get_a_clear_answer(
    alice_client: Any, alice: Any
) -> None:
    kb = KnowledgeBase.objects.create(owner=alice, name="Docs")
    response = _share(alice_client, kb, "alice@example.com")
    assert response.status_code == 422
    assert "owner already has full access" in response.json()["detail"]
    response = alice_client.post(
        f"/api/v1/knowledge-bases/{kb.pk}/shares",
        {"user": "bob", "role": "owner"},
        content_type="application/json",
    )
    assert response.status_code == 422
