from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_metrics_count_answers_tokens_and_first_token_time(alice_client):
    created = alice_client.post(
        "/api/v1/conversations", {"provider": "offline"}, content_type="application/json"
    )
    assert created.status_code in (200, 201), created.content
    conversation_id = created.json()["id"]
    answer = alice_client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        {"content": "Как оформить отпуск?"},
        content_type="application/json",
    )
    assert answer.status_code in (200, 201), answer.content
    body = alice_client.get("/metrics").content.decode()
    assert (
        'raggen_answers_total{model="offline-extractive",provider="offline",status="complete"}'
        in body
    )
    assert 'raggen_answer_tokens_total{kind="completion",provider="offline"}' in body
    assert 'raggen_answer_first_token_seconds_count{provider="offline"}' in body
