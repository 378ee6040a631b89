from __future__ import annotations

import json
from typing import Any

import pytest

from chat.models import Conversation, Message, MessageStatus, PromptTemplate, Role
from chat.tests.factories import make_conversation, make_indexed_kb
from providers.fakes import Script

API = "/api/v1"


def post(client: Any, url: str, data: Any) -> Any:
    return client.post(f"{API}{url}", data, content_type="application/json")


def patch(client: Any, url: str, data: Any) -> Any:
    return client.patch(f"{API}{url}", data, content_type="application/json")


def parse_sse(body: str) -> list[dict[str, Any]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        event = json.loads(lines["data"])
        assert lines["event"] == event["type"]
        events.append(event)
    return events


@pytest.mark.django_db
def test_creating_a_conversation_attaches_readable_knowledge_bases_and_a_template_preset(
    alice_client, alice
):
    kb = make_indexed_kb(alice)
    template = PromptTemplate.objects.create(
        name="Precise", body="Explain {topic}", params={"temperature": 0.1}
    )

    response = post(
        alice_client,
        "/conversations",
        {"knowledge_base_ids": [kb.pk], "template_id": template.pk, "params": {"top_k": 4}},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["knowledge_base_ids"] == [kb.pk] and body["template_id"] == template.pk
    assert body["params"] == {"temperature": 0.1, "top_k": 4}


@pytest.mark.django_db
def test_a_knowledge_base_of_another_user_cannot_be_attached(alice_client, bob):
    other = make_indexed_kb(bob, "Secret")

    response = post(alice_client, "/conversations", {"knowledge_base_ids": [other.pk]})

    assert response.status_code == 404
    assert not Conversation.objects.exists()


@pytest.mark.django_db
def test_an_unknown_provider_is_refused(alice_client):
    response = post(alice_client, "/conversations", {"provider": "nope"})

    assert response.status_code == 422 and "nope" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_conversations_of_another_user_are_not_found_for_every_operation(alice_client, bob):
    theirs = make_conversation(bob, title="Bob's")
    url = f"/conversations/{theirs.pk}"

    responses = [
        alice_client.get(f"{API}{url}"),
        patch(alice_client, url, {"title": "mine"}),
        alice_client.delete(f"{API}{url}"),
        alice_client.get(f"{API}{url}/messages"),
        post(alice_client, f"{url}/messages", {"content": "hi"}),
        post(alice_client, f"{url}/stop", {}),
        alice_client.get(f"{API}{url}/export"),
    ]

    assert [r.status_code for r in responses] == [404] * len(responses)
    assert Conversation.objects.get(pk=theirs.pk).title == "Bob's"


@pytest.mark.django_db
def test_conversations_are_listed_newest_first_paged_and_searchable_by_title_and_content(
    alice_client, alice, bob, django_assert_num_queries
):
    old = make_conversation(alice, title="Invoices")
    Message.objects.create(conversation=old, role=Role.USER, content="about penalties")
    new = make_conversation(alice, title="Vacations")
    make_conversation(bob, title="Invoices too")
    Conversation.objects.filter(pk=old.pk).update(updated_at="2020-01-01T00:00:00Z")

    with django_assert_num_queries(6):  # session, user, count, page, two prefetches
        page = alice_client.get(f"{API}/conversations?limit=1").json()
    by_title = alice_client.get(f"{API}/conversations?q=invoice").json()
    by_content = alice_client.get(f"{API}/conversations?q=PENALTIES").json()

    assert page["count"] == 2 and [c["id"] for c in page["items"]] == [new.pk]
    assert [c["id"] for c in by_title["items"]] == [old.pk]
    assert [c["id"] for c in by_content["items"]] == [old.pk]
    assert by_content["items"][0]["message_count"] == 1


@pytest.mark.django_db
def test_a_conversation_can_be_renamed_and_deleted(alice_client, alice):
    conversation = make_conversation(alice, title="Old")
    Message.objects.create(conversation=conversation, role=Role.USER, content="q")

    renamed = patch(alice_client, f"/conversations/{conversation.pk}", {"title": "New"})
    deleted = alice_client.delete(f"{API}/conversations/{conversation.pk}")

    assert renamed.status_code == 200 and renamed.json()["title"] == "New"
    assert deleted.status_code == 204
    assert not Conversation.objects.exists() and not Message.objects.exists()


@pytest.mark.django_db
def test_patching_provider_and_params_merges_and_keeps_the_rest(alice_client, alice):
    conversation = make_conversation(alice, provider="offline", params={"top_k": 5})

    response = patch(
        alice_client,
        f"/conversations/{conversation.pk}",
        {"provider": "openai", "model": "llama3.2", "params": {"temperature": 0.2}},
    )

    body = response.json()
    assert (body["provider"], body["model"]) == ("openai", "llama3.2")
    assert body["params"] == {"top_k": 5, "temperature": 0.2}


@pytest.mark.django_db(transaction=True)
def test_posting_a_message_without_stream_answers_one_json_message_with_citations(
    alice_client, alice
):
    kb = make_indexed_kb(alice)
    conversation = make_conversation(alice, kb, provider="offline")

    response = post(
        alice_client,
        f"/conversations/{conversation.pk}/messages",
        {"content": "When are invoices paid?"},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["role"] == "assistant" and body["status"] == "complete"
    handbook = [c for c in body["citations"] if c["page"] == 1]
    assert handbook and handbook[0]["document_title"] == "Handbook"
    assert f"[{handbook[0]['number']}] Handbook, p. 1" in body["content"]


@pytest.mark.django_db(transaction=True)
def test_messages_are_paged_oldest_first_with_their_citations_in_few_queries(
    alice_client, alice, django_assert_num_queries
):
    kb = make_indexed_kb(alice)
    conversation = make_conversation(alice, kb, provider="offline")
    for question in ("When are invoices paid?", "When is the office open?"):
        post(alice_client, f"/conversations/{conversation.pk}/messages", {"content": question})

    # session, user, the conversation and its two prefetches, count, page, citations
    with django_assert_num_queries(8):
        page = alice_client.get(f"{API}/conversations/{conversation.pk}/messages?limit=3").json()

    assert page["count"] == 4
    assert [m["role"] for m in page["items"]] == ["user", "assistant", "user"]
    assert page["items"][1]["citations"] and page["items"][0]["citations"] == []


@pytest.mark.django_db(transaction=True)
async def test_stream_true_answers_server_sent_events_read_by_the_async_client(
    async_client, alice, openai_fake
):
    from asgiref.sync import sync_to_async

    openai_fake.script = Script(tokens=["Paid ", "in 30 days ", "[1]."])
    kb = await sync_to_async(make_indexed_kb)(alice)
    conversation = await sync_to_async(make_conversation)(alice, kb, provider="openai")
    await async_client.aforce_login(alice)

    response = await async_client.post(
        f"{API}/conversations/{conversation.pk}/messages",
        {"content": "When are invoices paid?", "stream": True},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    body = "".join(
        [c.decode() if isinstance(c, bytes) else c async for c in response.streaming_content]
    )

    events = parse_sse(body)
    assert [e["type"] for e in events] == (
        ["start", "sources", "delta", "delta", "delta", "citations", "usage", "done", "grounding"]
    )
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Paid in 30 days [1]."
    assert [c["page"] for c in events[5]["citations"]] == [1]
    assert events[-2]["status"] == "complete"
    message = await Message.objects.aget(pk=events[0]["message_id"])
    assert message.status == MessageStatus.COMPLETE and message.content == "Paid in 30 days [1]."


@pytest.mark.django_db
def test_export_markdown_and_json_carry_each_answers_sources(alice_client, alice):
    conversation = make_conversation(alice, title="Invoices")
    Message.objects.create(conversation=conversation, role=Role.USER, content="When?")
    answer = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Within 30 days [1].",
        provider="offline",
    )
    answer.citations.create(
        number=1, document_title="Handbook", page=3, score=0.9, quote="Invoices are paid."
    )

    markdown = alice_client.get(f"{API}/conversations/{conversation.pk}/export")
    exported = alice_client.get(f"{API}/conversations/{conversation.pk}/export?format=json")

    assert markdown["Content-Disposition"] == 'attachment; filename="invoices.md"'
    text = markdown.content.decode()
    assert "# Invoices" in text and "Within 30 days [1]." in text
    assert "**[1] Handbook, p. 3**\n\n> Invoices are paid." in text
    data = json.loads(exported.content)
    assert data["messages"][1]["citations"][0]["quote"] == "Invoices are paid."
    assert data["messages"][1]["citations"][0]["page"] == 3


@pytest.mark.django_db
def test_templates_list_global_and_own_only_and_render_their_placeholders(alice_client, bob):
    PromptTemplate.objects.create(name="Global", body="Summarise {doc}", params={"top_k": 3})
    PromptTemplate.objects.create(owner=bob, name="Bob's", body="secret")

    created = post(
        alice_client,
        "/prompt-templates",
        {"name": "Mine", "body": "Compare {a} with {b}", "params": {"temperature": 0.5}},
    )
    listed = alice_client.get(f"{API}/prompt-templates").json()
    rendered = post(
        alice_client, f"/prompt-templates/{created.json()['id']}/render", {"values": {"a": "x"}}
    )
    filled = post(
        alice_client,
        f"/prompt-templates/{created.json()['id']}/render",
        {"values": {"a": "x", "b": "y"}},
    )

    assert created.status_code == 201 and created.json()["placeholders"] == ["a", "b"]
    assert [(t["name"], t["is_global"]) for t in listed] == [("Global", True), ("Mine", False)]
    assert rendered.status_code == 422 and rendered.json()["missing"] == ["b"]
    assert filled.json() == {"text": "Compare x with y", "params": {"temperature": 0.5}}


@pytest.mark.django_db
def test_global_templates_cannot_be_changed_and_others_templates_are_not_found(alice_client, bob):
    global_template = PromptTemplate.objects.create(name="Global", body="x")
    theirs = PromptTemplate.objects.create(owner=bob, name="Bob's", body="x")

    changed = patch(alice_client, f"/prompt-templates/{global_template.pk}", {"body": "y"})
    deleted = alice_client.delete(f"{API}/prompt-templates/{theirs.pk}")

    assert (changed.status_code, deleted.status_code) == (403, 404)


@pytest.mark.django_db
def test_a_malformed_template_body_is_refused_with_a_reason(alice_client):
    response = post(alice_client, "/prompt-templates", {"name": "Bad", "body": "Oops {"})

    assert response.status_code == 422 and "malformed" in response.json()["detail"]


@pytest.mark.django_db
def test_providers_are_listed_with_the_default_marked(alice_client):
    providers = alice_client.get(f"{API}/chat/providers").json()

    offline = next(p for p in providers if p["name"] == "offline")
    assert offline["configured"] and offline["default"]


@pytest.mark.django_db
def test_the_api_needs_a_signed_in_user(client):
    assert client.get(f"{API}/conversations").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_stop_without_a_running_answer_says_nothing_was_stopped(alice_client, alice):
    conversation = make_conversation(alice)

    response = post(alice_client, f"/conversations/{conversation.pk}/stop", {})

    assert response.status_code == 200 and response.json() == {"stopped": False}


@pytest.mark.django_db
def test_the_openapi_schema_lists_the_chat_endpoints(alice_client):
    paths = alice_client.get(f"{API}/openapi.json").json()["paths"]

    assert {
        f"{API}/conversations/{{conversation_id}}/messages",
        f"{API}/conversations/{{conversation_id}}/export",
        f"{API}/prompt-templates/{{template_id}}/render",
    } <= set(paths)


@pytest.mark.django_db(transaction=True)
async def test_the_stream_frames_the_grounding_event_after_done(async_client, alice, openai_fake):
    from asgiref.sync import sync_to_async

    invented = "The finance director Margaret Thornton signs every invoice by hand."
    openai_fake.script = Script(tokens=["Invoices are paid within 30 days [1]. ", invented])
    kb = await sync_to_async(make_indexed_kb)(alice)
    conversation = await sync_to_async(make_conversation)(alice, kb, provider="openai")
    await async_client.aforce_login(alice)

    response = await async_client.post(
        f"{API}/conversations/{conversation.pk}/messages",
        {"content": "When are invoices paid?", "stream": True},
        content_type="application/json",
    )
    body = "".join(
        [c.decode() if isinstance(c, bytes) else c async for c in response.streaming_content]
    )

    done, grounding = body.strip().split("\n\n")[-2:]
    assert done.startswith("event: done\n")
    message = await Message.objects.aget(pk=parse_sse(body)[0]["message_id"])
    start = message.content.index(invented)
    assert grounding == "event: grounding\ndata: " + json.dumps(
        {
            "type": "grounding",
            "message_id": message.pk,
            "supported_share": 0.5,
            "unsupported": [{"start": start, "end": start + len(invented)}],
        }
    )


@pytest.mark.django_db
def test_the_messages_carry_their_stored_grounding_report(alice_client, alice):
    conversation = make_conversation(alice)
    Message.objects.create(conversation=conversation, role=Role.USER, content="When?")
    report = {
        "supported_share": 0.5,
        "counted": 2,
        "supported": 1,
        "unsupported": [{"start": 20, "end": 41}],
    }
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Within 30 days [1]. Signed by Margaret.",
        grounding=report,
    )

    page = alice_client.get(f"{API}/conversations/{conversation.pk}/messages").json()

    assert [m["grounding"] for m in page["items"]] == [None, report]
