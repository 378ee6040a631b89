"""Issue 16, point 5: when the best passage given is weak, no provider is asked; the answer says
the documents do not answer and cites the closest passages (ANSWER_REFUSE_WEAK)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation

from chat.context import Passage
from chat.pipeline import NO_ANSWER_FINISH, AnswerRequest, answer_stream, weak_context
from chat.tests.factories import make_conversation
from chat.tests.test_services import answer_of, ask, db, text_of
from documents.retrieval.tests.factories import make_kb
from providers.fakes import OpenAIFake
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)

UNRELATED = "What is the boiling point of mercury on Mars?"
E5 = "multilingual-e5-small-q4"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def completions(openai_fake: OpenAIFake) -> list[Any]:
    return openai_fake.requests_to("/v1/chat/completions")


def event(events: list[Any], kind: str) -> Any:
    return next(e for e in events if e["type"] == kind)


async def test_an_unrelated_question_never_reaches_the_provider_and_cites_the_closest_passages(
    alice, kb, openai_fake, settings
):
    settings.USAGE_GOOD_CONTEXT_SCORE = -1.0  # every cosine is good: the refusal alone marks it
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, UNRELATED)

    assert completions(openai_fake) == []
    text = text_of(events)
    assert text.startswith("The documents do not answer this question. The closest passages:")
    assert "configure" not in text.lower()
    sources = event(events, "sources")["sources"]
    cited = [c["number"] for c in event(events, "citations")["citations"]]
    assert cited == [1, 2, 3] and len(sources) > 3
    for number in cited:  # each cited with a whole sentence of its passage
        quote = sources[number - 1]["quote"]
        line = next(x for x in text.splitlines() if x.startswith(f"[{number}] "))
        excerpt = line.split("«", 1)[1].rstrip("»")
        assert excerpt in quote and excerpt.endswith(".")
    usage = event(events, "usage")
    assert usage["finish_reason"] == NO_ANSWER_FINISH == "no_answer"
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (0, 0)
    assert event(events, "done")["status"] == "complete"
    message = await db(answer_of)(events)
    assert message.content == text
    stored = await db(lambda: sorted(c.number for c in message.citations.all()))()
    assert stored == [1, 2, 3]
    assert message.finish_reason == NO_ANSWER_FINISH  # the refusal, recorded
    record = await db(UsageRecord.objects.get)(message_id=message.pk)
    assert record.no_good_context and record.status == "complete"
    assert record.refused


async def test_a_related_question_still_reaches_the_provider(alice, kb, openai_fake):
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    assert len(completions(openai_fake)) == 1
    assert event(events, "usage")["finish_reason"] == "stop"
    assert "do not answer" not in text_of(events)
    message = await db(answer_of)(events)
    assert message.finish_reason == "stop"
    record = await db(UsageRecord.objects.get)(message_id=message.pk)
    assert not record.refused


async def test_with_the_setting_off_an_unrelated_question_reaches_the_provider(
    alice, kb, openai_fake, settings
):
    settings.ANSWER_REFUSE_WEAK = False
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, UNRELATED)

    assert len(completions(openai_fake)) == 1
    assert event(events, "usage")["finish_reason"] == "stop"


async def test_the_threshold_is_a_setting(alice, kb, openai_fake, settings):
    settings.ANSWER_WEAK_PASSAGE = 1.01  # nothing is strong enough
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    assert completions(openai_fake) == []
    assert event(events, "usage")["finish_reason"] == NO_ANSWER_FINISH


async def test_the_refusal_speaks_the_russian_ui_language(alice, kb, openai_fake):
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    with translation.override("ru"):
        events = await ask(alice, conversation.pk, UNRELATED)

    assert completions(openai_fake) == []
    text = text_of(events)
    assert text.startswith("В документах нет ответа на этот вопрос. Ближайшие фрагменты:")
    assert "[1] Handbook, с. " in text or "[1] Contract: «" in text


async def test_knowledge_bases_that_found_nothing_get_the_same_refusal(alice, openai_fake):
    empty = await db(make_kb)(alice, "Empty")
    conversation = await db(make_conversation)(alice, empty, provider="openai")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    assert completions(openai_fake) == []
    assert text_of(events).startswith("The documents do not answer this question.")
    assert "closest passages" not in text_of(events)
    assert event(events, "citations")["citations"] == []
    record = await db(UsageRecord.objects.get)(message_id=(await db(answer_of)(events)).pk)
    assert record.no_good_context


def passage(text: str, *, dense: float | None, encoder: str, number: int = 1) -> Passage:
    return Passage(
        chunk_id=number,
        document_id=1,
        title="Regulations",
        file_name="regulations.txt",
        text=text,
        page=None,
        score=1.0,
        dense_score=dense,
        encoder=encoder,
    )


RUSSIAN = passage("Назначаются три оппонента из числа докторов наук.", dense=0.86, encoder=E5)
QUESTION_EN = "How many opponents are appointed?"  # no stem in common with the passage


def test_the_multilingual_encoder_keeps_a_paraphrase_with_a_high_dense_score():
    assert not weak_context(QUESTION_EN, [RUSSIAN], threshold=0.2)


@pytest.mark.parametrize(
    ("dense", "encoder"),
    [(0.79, E5), (None, E5), (0.95, MINILM), (0.95, "")],
    ids=["e5-below-0.8", "e5-no-dense", "minilm-keywords-only", "encoder-unknown"],
)
def test_otherwise_the_keyword_rule_alone_decides(dense, encoder):
    weak = passage(RUSSIAN.text, dense=dense, encoder=encoder)
    assert weak_context(QUESTION_EN, [weak], threshold=0.2)


def test_keywords_above_the_threshold_are_not_weak_and_no_passage_is():
    strong = passage("Three opponents are appointed.", dense=0.1, encoder=MINILM)
    assert not weak_context(QUESTION_EN, [strong], threshold=0.2)
    assert weak_context(QUESTION_EN, [], threshold=0.2)


async def test_through_the_pipeline_the_e5_exception_asks_the_provider(openai_fake):
    request = AnswerRequest(
        question=QUESTION_EN, provider="openai", knowledge_base_ids=(1,), passages=(RUSSIAN,)
    )

    events = [e async for e in answer_stream(request)]

    assert len(completions(openai_fake)) == 1
    assert event(events, "usage")["finish_reason"] == "stop"


@pytest.mark.parametrize(
    "question",
    [
        "Summarize the document",
        "What is this document about?",
        "О чём этот документ?",
        "Кратко перескажи основные пункты",
        "Tell me everything about invoices",
    ],
)
def test_a_question_that_asks_about_the_documents_as_a_whole_is_not_weak(question):
    invoices = passage("Invoices are paid within 30 days of receipt.", dense=0.1, encoder=MINILM)
    assert not weak_context(question, [invoices], threshold=0.2)


def test_request_words_do_not_hide_an_unrelated_topic():
    invoices = passage("Invoices are paid within 30 days of receipt.", dense=0.1, encoder=MINILM)
    assert weak_context("Summarize the boiling point of mercury on Mars", [invoices], threshold=0.2)
    assert weak_context("Расскажи про температуру кипения ртути", [invoices], threshold=0.2)


async def test_a_summary_request_reaches_the_provider(alice, kb, openai_fake):
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, "Summarize the document, please")

    assert len(completions(openai_fake)) == 1
    assert "do not answer" not in text_of(events)


async def test_a_refusal_is_not_grounding_checked(alice, kb, openai_fake):
    # It says the documents do not answer, then quotes them: no sentence of it is a claim.
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, UNRELATED)

    assert event(events, "usage")["finish_reason"] == NO_ANSWER_FINISH
    assert [e for e in events if e["type"] == "grounding"] == []
    message = await db(answer_of)(events)
    assert message.grounding is None


async def test_an_answer_from_the_provider_is_grounding_checked(alice, kb, openai_fake):
    conversation = await db(make_conversation)(alice, kb, provider="openai")

    events = await ask(alice, conversation.pk, "When are invoices paid?")

    assert [e["type"] for e in events if e["type"] == "grounding"] == ["grounding"]


def test_the_api_says_which_answers_were_refusals(alice, alice_client, kb):
    conversation = make_conversation(alice, kb, provider="offline")
    url = f"/api/v1/conversations/{conversation.pk}/messages"
    for question in (UNRELATED, "When are invoices paid?"):
        response = alice_client.post(url, {"content": question}, content_type="application/json")
        assert response.status_code < 300, response.content

    items = alice_client.get(url).json()["items"]

    answers = [(m["content"][:40], m["finish_reason"]) for m in items if m["role"] == "assistant"]
    assert answers == [
        ("The documents do not answer this questio", "no_answer"),
        ("No language model provider is configured", "stop"),
    ]
    assert {m["finish_reason"] for m in items if m["role"] == "user"} == {""}
    refused = UsageRecord.objects.filter(conversation=conversation).values_list(
        "refused", flat=True
    )
    assert sorted(refused) == [False, True]
