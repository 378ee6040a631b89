"""Errors reach users in their language: the JSON API answers in the caller's language
(Accept-Language, the switcher's cookie; API tokens too), websocket error events in the
language of the handshake, and failure reasons, stored in English by the background ingestion,
are translated when shown."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import StreamingHttpResponse
from django.test import AsyncClient, Client
from django.utils import translation

from accounts.services import api_token_create
from chat.tests.factories import make_conversation
from documents.models import Document, KnowledgeBase
from documents.progress import ProgressManager
from documents.reasons import translate_reason
from raggen.asgi import application

RU = {"Accept-Language": "ru"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _kb(client: Client, **fields: Any) -> Any:
    return client.post(
        "/api/v1/knowledge-bases", {"name": "Docs", **fields}, content_type="application/json"
    )


# --- the JSON API ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_missing_knowledge_base_is_a_404_in_the_callers_language(alice_client):
    russian = alice_client.get("/api/v1/knowledge-bases/999999", headers=RU)
    english = alice_client.get("/api/v1/knowledge-bases/999999")

    assert (russian.status_code, russian.json()) == (404, {"detail": "База знаний не найдена."})
    assert (english.status_code, english.json()) == (404, {"detail": "Knowledge base not found."})
    assert russian["Content-Language"] == "ru"


@pytest.mark.django_db
def test_an_api_token_client_gets_russian_with_accept_language(alice):
    _, plaintext = api_token_create(user=alice, name="script", scope="write")
    client = Client(headers={"Authorization": f"Bearer {plaintext}"})

    missing = client.get("/api/v1/documents/999999", headers=RU)
    bad_token = Client(headers={"Authorization": "Bearer rg_nope_nope"}).get(
        "/api/v1/knowledge-bases", headers=RU
    )

    assert missing.status_code == 404
    assert missing.json() == {"detail": "Документ не найден."}
    assert bad_token.status_code == 401
    assert bad_token.json()["detail"] == "Этот API-токен недействителен."


@pytest.mark.django_db
def test_the_switchers_cookie_outranks_the_browser_language(alice_client):
    alice_client.cookies["django_language"] = "ru"

    response = alice_client.get("/api/v1/knowledge-bases/999999", headers={"Accept-Language": "en"})

    assert response.json() == {"detail": "База знаний не найдена."}


@pytest.mark.django_db
def test_a_bad_setting_is_refused_in_russian_and_validation_errors_stay_structured(alice_client):
    overlap = alice_client.post(
        "/api/v1/knowledge-bases",
        {"name": "Docs", "max_chunk_tokens": 100, "overlap_tokens": 60},
        content_type="application/json",
        headers=RU,
    )
    schema = alice_client.post(
        "/api/v1/knowledge-bases",
        {"name": "Docs", "max_chunk_tokens": 5},
        content_type="application/json",
        headers=RU,
    )

    assert overlap.status_code == 422
    assert overlap.json() == {
        "detail": "Перекрытие может быть не больше половины максимального размера фрагмента."
    }
    # ninja's own validation: still the structured list a client can act on, whatever the language
    assert schema.status_code == 422
    [error] = schema.json()["detail"]
    assert error["loc"][-1] == "max_chunk_tokens" and error["type"] == "greater_than_equal"


@pytest.mark.django_db
def test_an_unconfigured_encoder_says_in_russian_how_to_configure_it(alice_client, settings):
    settings.GIGACHAT_CREDENTIALS = ""

    russian = alice_client.post(
        "/api/v1/knowledge-bases",
        {"name": "Docs", "encoder": "gigachat"},
        content_type="application/json",
        headers=RU,
    )
    english = alice_client.post(
        "/api/v1/knowledge-bases",
        {"name": "Docs", "encoder": "gigachat"},
        content_type="application/json",
    )

    assert russian.status_code == english.status_code == 400
    assert russian.json()["detail"].startswith("GigaChat не настроен: задайте GIGACHAT_CREDENTIALS")
    assert russian.json()["detail"].endswith("Или выберите другой энкодер.")
    assert english.json()["detail"].startswith(
        "GigaChat is not configured: set GIGACHAT_CREDENTIALS"
    )


@pytest.mark.django_db
def test_a_duplicate_upload_is_a_409_in_russian(alice_client):
    kb_id = _kb(alice_client).json()["id"]
    url = f"/api/v1/knowledge-bases/{kb_id}/documents"
    body = b"Invoices are paid within 30 days.\n"
    first = alice_client.post(url, {"files": [SimpleUploadedFile("a.txt", body)]})

    again = alice_client.post(url, {"files": [SimpleUploadedFile("b.txt", body)]}, headers=RU)

    document_id = first.json()["documents"][0]["document"]["id"]
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"Уже есть в этой базе знаний: b.txt уже загружен как документ {document_id} (a.txt)."
    )
    assert again.json()["existing_document_ids"] == [document_id]


@pytest.mark.django_db
def test_an_unsupported_file_is_refused_in_russian(alice_client):
    kb_id = _kb(alice_client).json()["id"]

    response = alice_client.post(
        f"/api/v1/knowledge-bases/{kb_id}/documents",
        {"files": [SimpleUploadedFile("photo.png", PNG)]},
        headers=RU,
    )

    assert response.status_code == 422
    assert response.json()["detail"] == (
        "photo.png: Этот файл — изображение PNG, такие файлы мы читать не умеем. "
        "Загрузите файл PDF, DOCX, TXT, Markdown или HTML."
    )


# --- failure reasons: stored in English, shown in the reader's language ---------------------


@pytest.mark.django_db(transaction=True)
def test_a_failure_reason_is_stored_in_english_and_shown_in_russian(alice_client):
    kb_id = _kb(alice_client).json()["id"]
    empty = b"<html><body><script>x()</script></body></html>"
    # Uploaded by a Russian reader; ingestion runs (eagerly, in tests) on commit and fails.
    upload = alice_client.post(
        f"/api/v1/knowledge-bases/{kb_id}/documents",
        {"files": [SimpleUploadedFile("empty.html", empty)]},
        headers=RU,
    )
    document_id = upload.json()["documents"][0]["document"]["id"]

    stored = Document.objects.get(pk=document_id)
    russian = alice_client.get(f"/api/v1/documents/{document_id}", headers=RU).json()
    english = alice_client.get(f"/api/v1/documents/{document_id}").json()
    page = alice_client.get(f"/kb/{kb_id}/", headers=RU).content.decode()

    assert (stored.status, stored.failure_reason) == (
        "failed",
        "The HTML page contains no visible text.",
    )
    assert russian["failure_reason"] == "На HTML-странице нет видимого текста."
    assert english["failure_reason"] == "The HTML page contains no visible text."
    assert "На HTML-странице нет видимого текста." in page


def test_reasons_built_from_templates_are_translated_part_by_part():
    stored = (
        "Yandex embeddings failed: Yandex is unavailable right now: bad gateway (HTTP 502). "
        "Try again later. (tried 5 times; retry later)"
    )
    with translation.override("ru"):
        russian = translate_reason(stored)
        unknown = translate_reason("Something the provider said, in its own words.")
    with translation.override("en"):
        english = translate_reason(stored)

    assert russian == (
        "Ошибка эмбеддингов Yandex: Yandex сейчас недоступен: bad gateway (HTTP 502). "
        "Попробуйте позже. (попыток: 5; повторите позже)"
    )
    assert english == stored
    assert unknown == "Something the provider said, in its own words."


# --- websockets -----------------------------------------------------------------------------


def _cookie(user: Any, language: str | None = None) -> str:
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return f"{cookie}; django_language={language}" if language else cookie


async def _socket(path: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        application, path, [(b"origin", b"http://localhost"), *headers]
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _first_error(communicator: WebsocketCommunicator) -> str:
    while True:
        event = await communicator.receive_json_from(timeout=10)
        if event["type"] == "error":
            message: str = event["message"]
            return message


@pytest.mark.django_db(transaction=True)
async def test_a_chat_error_event_is_russian_for_a_russian_cookie(alice):
    conversation = await sync_to_async(make_conversation)(alice, provider="offline")
    path = f"/ws/chat/{conversation.pk}/"
    russian = await _socket(path, (b"cookie", (await sync_to_async(_cookie)(alice, "ru")).encode()))
    english = await _socket(path, (b"cookie", (await sync_to_async(_cookie)(alice)).encode()))

    await russian.send_json_to({"type": "regenerate"})
    said_in_russian = await _first_error(russian)
    await english.send_json_to({"type": "regenerate"})
    said_in_english = await _first_error(english)

    assert said_in_russian == "Нет вопроса, на который можно ответить заново."
    assert said_in_english == "There is no question to answer again."
    await russian.disconnect()
    await english.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_provider_error_over_the_socket_follows_accept_language(alice, settings):
    settings.YANDEX_API_KEY = settings.YANDEX_IAM_TOKEN = settings.YANDEX_FOLDER_ID = ""
    conversation = await sync_to_async(make_conversation)(alice, provider="yandexgpt")
    cookie = (await sync_to_async(_cookie)(alice)).encode()
    socket = await _socket(
        f"/ws/chat/{conversation.pk}/", (b"cookie", cookie), (b"accept-language", b"ru-RU,ru;q=0.9")
    )

    await socket.send_json_to({"type": "send", "content": "Когда оплачиваются счета?"})
    message = await _first_error(socket)

    assert message.startswith("YandexGPT не настроен. Задайте YANDEX_API_KEY")
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_progress_failure_reason_is_sent_in_the_readers_language(alice):
    kb = await KnowledgeBase.objects.acreate(name="Docs", owner=alice)
    path = f"/ws/kb/{kb.pk}/progress/"
    russian = await _socket(path, (b"cookie", (await sync_to_async(_cookie)(alice, "ru")).encode()))
    english = await _socket(path, (b"cookie", (await sync_to_async(_cookie)(alice)).encode()))

    await sync_to_async(ProgressManager(kb.pk).send)(
        7,
        "failed",
        100,
        failure_reason="This PDF has more than 2000 pages, the most we accept; split it.",
    )

    assert (await russian.receive_json_from(timeout=5))["failure_reason"] == (
        "В этом PDF больше 2000 страниц — это максимум, который мы принимаем; разделите его."
    )
    assert (await english.receive_json_from(timeout=5))["failure_reason"] == (
        "This PDF has more than 2000 pages, the most we accept; split it."
    )
    await russian.disconnect()
    await english.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_error_in_the_event_stream_is_in_the_callers_language(alice):
    conversation = await sync_to_async(make_conversation)(alice, provider="offline")
    client = AsyncClient()
    await sync_to_async(client.force_login)(alice)

    response = await client.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"content": "", "regenerate": True, "stream": True},
        content_type="application/json",
        headers=RU,
    )
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join([piece async for piece in response]).decode()

    assert response.status_code == 200
    assert '"message": "Нет вопроса, на который можно ответить заново."' in body


# --- e-mails --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "subject", "greeting"),
    [
        ("ru", "Письмо для сброса пароля", "Вас приветствует"),
        ("en", "Password Reset Email", "Hello from"),
    ],
)
def test_the_password_reset_mail_is_in_the_readers_language(
    client, alice, language, subject, greeting
):
    alice.email = "alice@example.com"
    alice.save(update_fields=["email"])

    client.post(
        "/accounts/password/reset/",
        {"email": "alice@example.com"},
        headers={"Accept-Language": language},
    )

    [message] = mail.outbox
    assert subject in message.subject
    assert message.body.startswith(greeting)


# --- provider labels and help ----------------------------------------------------------------


@pytest.mark.django_db
def test_provider_labels_and_how_to_configure_them_are_translated(alice_client, settings):
    settings.YANDEX_API_KEY = settings.YANDEX_IAM_TOKEN = ""

    russian = {p["name"]: p for p in alice_client.get("/api/v1/chat/providers", headers=RU).json()}
    english = {p["name"]: p for p in alice_client.get("/api/v1/chat/providers").json()}
    page = alice_client.get("/", headers=RU).content.decode()

    assert russian["offline"]["label"] == "Офлайн (цитирует фрагменты)"
    assert russian["openai"]["label"] == "OpenAI-совместимый"
    assert russian["yandexgpt"]["how_to_configure"].startswith("Задайте YANDEX_API_KEY")
    assert english["offline"]["label"] == "Offline (quotes the passages)"
    assert english["yandexgpt"]["how_to_configure"].startswith("Set YANDEX_API_KEY")
    assert "Офлайн (цитирует фрагменты)" in page


@pytest.mark.django_db
def test_an_answer_interrupted_by_a_restart_reads_in_the_readers_language(alice_client, alice):
    from chat.models import Message, MessageStatus
    from chat.services import INTERRUPTED_REASON

    conversation = make_conversation(alice, provider="offline")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        status=MessageStatus.FAILED,
        error=INTERRUPTED_REASON,  # written at start-up, with no request: English
    )
    url = f"/api/v1/conversations/{conversation.pk}/messages"

    [russian] = alice_client.get(url, headers=RU).json()["items"]
    [english] = alice_client.get(url).json()["items"]

    assert russian["error"] == "Сервер остановился, пока писал этот ответ."
    assert english["error"] == "The server stopped while writing this answer."
