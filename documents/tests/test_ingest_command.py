from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from documents.models import Document, KnowledgeBase
from documents.tests.helpers import DOCS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_encoder")]


def test_ingest_a_folder_prints_one_line_per_file_and_fails_on_bad_files(alice):
    out = io.StringIO()
    with pytest.raises(CommandError, match="4 file"):
        call_command(
            "ingest",
            str(DOCS / "pdf" / "pdfminer" / "encryption"),
            str(DOCS / "txt" / "ru_koi8-r.txt"),
            "--kb",
            "Imports",
            "--create",
            "--owner",
            "alice",
            stdout=out,
        )
    lines = out.getvalue().strip().splitlines()
    outcomes = dict(line.split("\t") for line in lines)
    assert len(lines) == 6
    assert outcomes[str(DOCS / "txt" / "ru_koi8-r.txt")].startswith("indexed: document ")
    # The same text unencrypted, and encrypted four ways with a user password.
    folder = DOCS / "pdf" / "pdfminer" / "encryption"
    assert outcomes[str(folder / "base.pdf")].startswith("indexed: document ")
    for name in ("aes-128.pdf", "aes-256.pdf", "rc4-128.pdf", "rc4-40.pdf"):
        assert outcomes[str(folder / name)] == (
            "failed: This PDF is password-protected; remove the password and upload it again."
        )
    kb = KnowledgeBase.objects.get(name="Imports")
    assert kb.owner == alice
    assert Document.objects.filter(knowledge_base=kb, status="indexed").exists()


def test_ingest_reports_duplicates_and_needs_create_for_a_new_kb(alice):
    path = str(DOCS / "txt" / "ru_utf8.txt")
    with pytest.raises(CommandError, match="add --create"):
        call_command("ingest", path, "--kb", "Nope")
    call_command(
        "ingest", path, "--kb", "Once", "--create", "--owner", "alice", stdout=io.StringIO()
    )
    out = io.StringIO()
    call_command("ingest", path, "--kb", "Once", stdout=out)
    assert "\tduplicate of document " in out.getvalue()
