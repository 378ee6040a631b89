"""The offline provider through the answer pipeline: it is given the user's question, not the
RAG prompt around it (which holds every passage's words), so it quotes only what answers."""

from __future__ import annotations

import pytest

from chat.tests.factories import HANDBOOK, make_conversation
from chat.tests.test_services import answer_of, ask, db

pytestmark = pytest.mark.django_db(transaction=True)


async def test_offline_answer_through_the_pipeline_quotes_only_the_sentence_that_answers(alice, kb):
    conversation = await db(make_conversation)(alice, kb, provider="offline")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    message = await db(answer_of)(events)
    assert HANDBOOK[0] in message.content
    for other in HANDBOOK[1:]:
        assert other not in message.content
    assert "penalty" not in message.content and "supplier" not in message.content
