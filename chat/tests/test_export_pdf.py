"""The PDF export: read back with pdfminer, it carries the questions, the answers (Russian and
English) and each answer's sources with document, page and quoted passage."""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import quote

import pytest
from pdfminer.high_level import extract_pages, extract_text
from pdfminer.layout import LTChar, LTTextContainer

from chat.export import conversation_export_pdf
from chat.models import Message, MessageStatus, Role
from chat.tests.factories import make_conversation
from documents.retrieval.tests.factories import make_kb

API = "/api/v1"


def _flat(text: str) -> str:
    """The text with every run of whitespace (line breaks of the layout) as one space."""
    return re.sub(r"\s+", " ", text).strip()


def _conversation(owner: Any) -> Any:
    kb = make_kb(owner, "Договоры")
    conversation = make_conversation(owner, kb, title="Аренда офиса")
    Message.objects.create(
        conversation=conversation, role=Role.USER, content="Какой срок аренды по договору?"
    )
    answer = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Срок аренды составляет 11 месяцев [1], оплата ежемесячно [2].",
        provider="openai",
        model="llama3.2",
    )
    answer.citations.create(
        number=1,
        document_title="Договор аренды №7",
        file_name="dogovor-7.pdf",
        page=4,
        score=0.91,
        quote="Договор заключён сроком на одиннадцать (11) месяцев.",
    )
    answer.citations.create(
        number=2,
        document_title="Приложение Б",
        file_name="prilozhenie-b.docx",
        page=None,
        score=0.7,
        quote="Арендная плата вносится ежемесячно до 5-го числа.",
    )
    Message.objects.create(
        conversation=conversation, role=Role.USER, content="And the notice period?"
    )
    english = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Either party may terminate with 30 days' notice [1].\tThat is all 🙂.",
        provider="openai",
        status=MessageStatus.STOPPED,
        error="Stopped by the user.",
    )
    english.citations.create(
        number=1,
        document_title="Lease Agreement",
        file_name="lease.pdf",
        page=12,
        score=0.8,
        quote="Either party may terminate this agreement by giving thirty days' written notice.",
    )
    return conversation


@pytest.mark.django_db
def test_pdf_export_carries_russian_and_english_answers_with_their_sources(alice_client, alice):
    conversation = _conversation(alice)

    response = alice_client.get(f"{API}/conversations/{conversation.pk}/export?format=pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    # The file is named after the Russian title (RFC 6266 filename*), not "conversation-N".
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''" + quote(
        "аренда-офиса.pdf"
    )
    assert response.content.startswith(b"%PDF-")
    text = _flat(extract_text(io.BytesIO(response.content)))
    assert "Аренда офиса" in text
    assert "Knowledge bases: Договоры" in text
    assert "Какой срок аренды по договору?" in text
    assert "Срок аренды составляет 11 месяцев [1], оплата ежемесячно [2]." in text
    assert "openai · llama3.2" in text
    # Each source: number, document, page (when known), file name and the quoted passage.
    assert "[1] Договор аренды №7, p. 4" in text
    assert "dogovor-7.pdf" in text
    assert "Договор заключён сроком на одиннадцать (11) месяцев." in text
    assert "[2] Приложение Б" in text and "Приложение Б, p." not in text
    assert "Арендная плата вносится ежемесячно до 5-го числа." in text
    assert "[1] Lease Agreement, p. 12" in text
    assert "giving thirty days' written notice." in text
    # A stopped answer says so; a tab is a space; a glyph the font lacks is a visible "?".
    assert "The answer was stopped: Stopped by the user." in text
    assert "30 days' notice [1]. That is all ?." in text
    # The order of the conversation is kept: question, answer, its sources, next question.
    assert (
        text.index("Какой срок")
        < text.index("Срок аренды составляет")
        < text.index("Договор заключён")
        < text.index("And the notice period?")
        < text.index("Lease Agreement")
    )


@pytest.mark.django_db
def test_pdf_embeds_its_font_so_cyrillic_needs_nothing_from_the_reader(alice):
    pdf = conversation_export_pdf(_conversation(alice))

    fonts = {
        item.fontname
        for page in extract_pages(io.BytesIO(pdf))
        for box in page
        if isinstance(box, LTTextContainer)
        for line in box
        for item in getattr(line, "_objs", [])
        if isinstance(item, LTChar)
    }
    assert fonts and all("PTSans" in f.replace("-", "").replace(" ", "") for f in fonts), fonts
    assert b"/FontFile2" in pdf  # the TrueType program is embedded (subset), not referenced


@pytest.mark.django_db
def test_a_long_conversation_flows_onto_numbered_pages(alice):
    conversation = make_conversation(alice, title="Long")
    for i in range(30):
        Message.objects.create(
            conversation=conversation, role=Role.USER, content=f"Вопрос номер {i}?"
        )
        Message.objects.create(
            conversation=conversation,
            role=Role.ASSISTANT,
            content=f"Ответ номер {i}. " + "Очень длинный текст без перерыва. " * 20,
        )

    pages = list(extract_pages(io.BytesIO(conversation_export_pdf(conversation))))

    assert len(pages) > 3
    whole = _flat(" ".join(extract_text(io.BytesIO(conversation_export_pdf(conversation))).split()))
    assert "Вопрос номер 0?" in whole and "Вопрос номер 29?" in whole
    assert "Ответ номер 29." in whole


@pytest.mark.django_db
def test_pdf_export_of_another_users_conversation_is_not_found(alice_client, bob):
    conversation = _conversation(bob)

    response = alice_client.get(f"{API}/conversations/{conversation.pk}/export?format=pdf")

    assert response.status_code == 404


@pytest.mark.django_db
def test_markdown_export_says_why_an_answer_is_partial_and_keeps_an_ascii_name(alice_client, alice):
    conversation = make_conversation(alice, title="Lease terms")
    Message.objects.create(conversation=conversation, role=Role.USER, content="Notice?")
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Thirty days",
        status=MessageStatus.FAILED,
        error="The provider timed out.",
    )

    response = alice_client.get(f"{API}/conversations/{conversation.pk}/export?format=markdown")

    assert response["Content-Disposition"] == 'attachment; filename="lease-terms.md"'
    assert "*The answer failed: The provider timed out.*" in response.content.decode()
