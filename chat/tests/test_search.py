"""Conversation search by title and content ignores case in Russian as in English, on SQLite
(whose LIKE folds ASCII only) and on PostgreSQL alike."""

from __future__ import annotations

from typing import Any

import pytest

from chat.models import Message, Role
from chat.selectors import conversation_list_for_user
from chat.tests.factories import make_conversation

API = "/api/v1"


def _titles(user: Any, query: str) -> set[str]:
    return {c.title for c in conversation_list_for_user(user=user, query=query)}


@pytest.fixture
def conversations(alice: Any, bob: Any) -> None:
    make_conversation(alice, title="Договор аренды")
    ask = make_conversation(alice, title="Вопросы")
    Message.objects.create(
        conversation=ask, role=Role.USER, content="Что говорит ДОГОВОР о сроках?"
    )
    make_conversation(alice, title="Invoices Q3")
    english = make_conversation(alice, title="Misc")
    Message.objects.create(
        conversation=english, role=Role.ASSISTANT, content="Late PENALTIES are 0.1% a day."
    )
    make_conversation(alice, title="Ёлки и ПЁС")
    make_conversation(alice, title="Growth 500 percent")
    make_conversation(bob, title="договор Боба")


@pytest.mark.django_db
@pytest.mark.usefixtures("conversations")
@pytest.mark.parametrize("query", ["договор", "ДОГОВОР", "Договор", "дОгОвОр"])
def test_cyrillic_search_ignores_case_in_titles_and_messages(alice, query):
    assert _titles(alice, query) == {"Договор аренды", "Вопросы"}


@pytest.mark.django_db
@pytest.mark.usefixtures("conversations")
def test_latin_search_ignores_case_in_titles_and_messages(alice):
    assert _titles(alice, "invoices") == {"Invoices Q3"}
    assert _titles(alice, "penalties") == {"Misc"}
    assert _titles(alice, "late penalties ARE") == {"Misc"}


@pytest.mark.django_db
@pytest.mark.usefixtures("conversations")
def test_yo_and_mixed_case_words_are_found(alice):
    assert _titles(alice, "пёс") == {"Ёлки и ПЁС"}
    assert _titles(alice, "ёЛКИ") == {"Ёлки и ПЁС"}


@pytest.mark.django_db
@pytest.mark.usefixtures("conversations")
def test_like_wildcards_in_the_query_are_plain_characters(alice):
    assert _titles(alice, "0.1%") == {"Misc"}
    assert _titles(alice, "50%") == set()
    assert _titles(alice, "Q_") == set()
    assert _titles(alice, "нет такого") == set()


@pytest.mark.django_db
@pytest.mark.usefixtures("conversations")
def test_search_over_the_api_finds_only_the_users_own(alice_client, alice):
    found = alice_client.get(f"{API}/conversations", {"q": "ДОГОВОР"}).json()

    assert {c["title"] for c in found["items"]} == {"Договор аренды", "Вопросы"}
    assert found["count"] == 2
