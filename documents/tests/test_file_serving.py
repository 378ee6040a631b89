"""Originals are served safely: typed by detection, inline only for a real PDF, sandboxed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.services import api_token_create
from conftest import ROOT, subprocess_env
from documents.models import Document
from documents.tests.conftest import make_docx, make_pdf, para

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_encoder")]

_SCRIPT = b"<html><body><script>fetch('/api/v1/tokens', {method: 'POST'})</script><!--\n"


@pytest.fixture
def token_client(alice: Any) -> Client:
    _token, plaintext = api_token_create(user=alice, name="CI", scope="write")
    return Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")


@pytest.fixture
def kb_id(token_client: Client) -> int:
    response = token_client.post(
        "/api/v1/knowledge-bases", {"name": "Files"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def _upload(client: Client, kb_id: int, name: str, data: bytes) -> Document:
    response = client.post(
        f"/api/v1/knowledge-bases/{kb_id}/documents", {"files": [SimpleUploadedFile(name, data)]}
    )
    assert response.status_code == 201, response.content
    return Document.objects.get(pk=response.json()["documents"][0]["document"]["id"])


def _assert_sandboxed(response: Any) -> None:
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"


def _pdf(tmp_path: Path) -> bytes:
    return make_pdf(tmp_path / "a.pdf", [["Hello from a PDF."]]).read_bytes()


def test_an_html_pdf_polyglot_is_served_as_a_sandboxed_pdf_download(
    token_client: Client, kb_id: int, tmp_path: Path
) -> None:
    polyglot = _SCRIPT + _pdf(tmp_path) + b"\n-->"
    document = _upload(token_client, kb_id, "report.html", polyglot)
    assert document.file_type == "pdf"
    assert document.file.name.endswith("/report.pdf")

    response = token_client.get(f"/api/v1/documents/{document.pk}/file")
    _assert_sandboxed(response)
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert response.getvalue() == polyglot


def test_a_real_pdf_opens_inline_as_application_pdf(
    token_client: Client, kb_id: int, tmp_path: Path
) -> None:
    document = _upload(token_client, kb_id, "manual.html", _pdf(tmp_path))
    response = token_client.get(f"/api/v1/documents/{document.pk}/file")
    _assert_sandboxed(response)
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="manual.pdf"'


@pytest.mark.parametrize(
    ("name", "content_type", "disposition"),
    [
        ("notes.txt", "text/plain; charset=utf-8", 'attachment; filename="notes.txt"'),
        (
            "Отчёт 2024.txt",
            "text/plain; charset=utf-8",
            "attachment; filename*=utf-8''%D0%9E%D1%82%D1%87%D1%91%D1%82%202024.txt",
        ),
        ("page.html", "text/html; charset=utf-8", 'attachment; filename="page.html"'),
    ],
)
def test_text_and_html_download_as_sandboxed_attachments(
    token_client: Client, kb_id: int, name: str, content_type: str, disposition: str
) -> None:
    data = b"<html><body><p>Hi</p><script>alert(1)</script></body></html>"
    document = _upload(token_client, kb_id, name, data if name.endswith("html") else b"Plain.")
    response = token_client.get(f"/api/v1/documents/{document.pk}/file")
    _assert_sandboxed(response)
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == disposition


def test_a_docx_named_pdf_downloads_as_a_docx_attachment(
    token_client: Client, kb_id: int, tmp_path: Path
) -> None:
    docx = make_docx(tmp_path / "a.docx", para("Hello from Word.")).read_bytes()
    document = _upload(token_client, kb_id, "contract.pdf", docx)
    assert document.file_type == "docx" and document.file.name.endswith("/contract.docx")
    response = token_client.get(f"/api/v1/documents/{document.pk}/file")
    _assert_sandboxed(response)
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert response["Content-Disposition"] == 'attachment; filename="contract.docx"'


def test_media_files_are_not_served_even_with_debug_on(alice: Any, tmp_path: Path) -> None:
    """The DEBUG-only ``/media/`` route served any stored file to any signed-in user: it is
    gone. A child process, because the URLconf reads DEBUG once, at import."""
    media = tmp_path / "media"
    (media / "kb" / "1").mkdir(parents=True)
    (media / "kb" / "1" / "secret.txt").write_text("secret")
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "from django.conf import settings\n"
        "from django.contrib.auth import get_user_model\n"
        "assert settings.DEBUG\n"
        "client = Client()\n"
        "client.force_login(get_user_model().objects.get(username='alice'))\n"
        "print(client.get('/media/kb/1/secret.txt').status_code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(DEBUG="true", MEDIA_ROOT=str(media), ALLOWED_HOSTS="testserver"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "404"
