"""Schemathesis against the real server: every operation of the published OpenAPI schema, every
check, a write API token and a seeded knowledge base. Any finding (a 500, an undeclared status
code, a body or a Content-Type unlike the schema, a schema-valid request refused or an invalid one
accepted) fails the test and is printed. A fixed seed and a bounded number of examples per
operation keep it reproducible; ``make fuzz`` runs it with more (``FUZZ_EXAMPLES``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import running_daphne, subprocess_env

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
# The operations that delete what the others need: fuzzed last, in a run of their own.
DESTRUCTIVE = r"^(DELETE .*|POST /api/v1/vectors/\{kb_id\}/delete)$"


# Operations that replace a document with a new version (and a new id) when it is indexed: they
# get a knowledge base and a document of their own, so that the others keep finding theirs.
CHURN = (
    r"^(POST /api/v1/documents/\{doc_id\}/(reindex|retry|versions)"
    r"|(PATCH|POST) /api/v1/knowledge-bases/\{kb_id\}(/reindex)?)$"
)


@dataclass
class Seeded:
    url: str
    token: str
    ids: dict[str, int]
    churn: dict[str, int]
    log: Path


def _wait_indexed(client: httpx.Client, doc_id: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = client.get(f"/documents/{doc_id}").json()["status"]
        if status == "indexed":
            return
        assert status != "failed", f"the seed document {doc_id} failed to index"
        time.sleep(0.5)
    raise AssertionError(f"the seed document {doc_id} was not indexed in 180 s")


def _knowledge_base(client: httpx.Client, name: str, text: str) -> tuple[int, int]:
    """A knowledge base holding one indexed document: (its id, the document's id)."""
    kb = client.post("/knowledge-bases", json={"name": name}).json()["id"]
    upload = client.post(f"/knowledge-bases/{kb}/documents", files={"files": (f"{name}.txt", text)})
    assert upload.status_code == 201, upload.text
    doc = upload.json()["documents"][0]["document"]["id"]
    _wait_indexed(client, doc)
    return kb, doc


def _seed(client: httpx.Client) -> tuple[dict[str, int], dict[str, int]]:
    """A knowledge base with an indexed document, shared with bob, a conversation on it with
    one answer, a prompt template; a second knowledge base and document for ``CHURN``."""
    kb, doc = _knowledge_base(
        client, "contracts", "A contract needs an offer, acceptance and consideration."
    )
    churn_kb, churn_doc = _knowledge_base(
        client, "supply", "The supplier delivers the goods within thirty days of the order."
    )
    invited = client.post(f"/knowledge-bases/{kb}/shares", json={"user": "bob", "role": "viewer"})
    assert invited.status_code == 202, invited.text
    # Sharing answers alike for known and unknown users: the share's id comes from the list.
    (share,) = client.get(f"/knowledge-bases/{kb}/shares").json()
    conversation = client.post("/conversations", json={"knowledge_base_ids": [kb]}).json()["id"]
    answer = client.post(
        f"/conversations/{conversation}/messages", json={"content": "What does a contract need?"}
    )
    assert answer.status_code == 200, answer.text
    template = client.post(
        "/prompt-templates", json={"name": "Summary", "body": "Summarise {topic} briefly."}
    )
    ids = {
        "kb_id": kb,
        "doc_id": doc,
        "document_id": doc,
        "share_id": share["id"],
        "conversation_id": conversation,
        "template_id": template.json()["id"],
    }
    return ids, {"kb_id": churn_kb, "doc_id": churn_doc}


@pytest.fixture
def seeded(transactional_db: None, django_user_model: Any, tmp_path: Path) -> Iterator[Seeded]:
    from accounts.services import api_token_create

    fuzzer = django_user_model.objects.create_user("fuzzer", "fuzzer@example.com", "x" * 20)
    django_user_model.objects.create_user("bob", "bob@example.com", "x" * 20)
    _, token = api_token_create(user=fuzzer, name="fuzz", scope="write")
    # The token DELETE /tokens/{token_id} revokes: not the one the fuzzer signs with.
    spare, _ = api_token_create(user=fuzzer, name="spare", scope="write")
    env = subprocess_env(
        DEBUG="false",
        SECRET_KEY="fuzz-" + "k" * 50,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        REDIS_URL="",
        BACKGROUND_TASKS="thread",
        DEFAULT_PROVIDER="offline",
        LOG_LEVEL="warning",
        # The fuzzer asks and uploads far faster than a person: unlimited, so that it reaches
        # past the limits (their 429 is declared, and its body tested in test_api_contract).
        RATE_LIMIT_CHAT_PER_MINUTE="0",
        RATE_LIMIT_UPLOAD_PER_MINUTE="0",
        RATE_LIMIT_SEARCH_PER_MINUTE="0",
        RATE_LIMIT_EMBED_PER_MINUTE="0",
    )
    log = tmp_path / "server.log"
    with running_daphne(env, log) as port:
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=120) as client:
            ids, churn = _seed(client)
        yield Seeded(url, token, {**ids, "token_id": spare.pk}, churn, log)


def _pins(ids: dict[str, int]) -> str:
    return ", ".join(f'"path.{name}" = {value}' for name, value in ids.items())


def _config(seeded: Seeded, folder: Path) -> Path:
    """The committed settings plus the seeded ids: path parameters name the seeded objects."""
    lines = [
        CONFIG.read_text(encoding="utf-8"),
        "[[operations]]",
        f"include-name-regex = '{CHURN}'",
        f"parameters = {{ {_pins(seeded.churn)} }}",
        "",
        "[parameters]",
        *(f'"path.{name}" = {value}' for name, value in seeded.ids.items()),
    ]
    path = folder / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _fuzz(seeded: Seeded, config: Path, *selection: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{seeded.url}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {seeded.token}",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES),
            "--no-color",
            *selection,
        ],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def test_the_api_keeps_its_published_contract_under_schemathesis(seeded, tmp_path):
    config = _config(seeded, tmp_path)
    # Everything but the deletions first, on the seeded data; then the deletions.
    runs = [
        _fuzz(seeded, config, "--exclude-name-regex", DESTRUCTIVE),
        _fuzz(seeded, config, "--include-name-regex", DESTRUCTIVE),
    ]
    for run in runs:  # the summaries (shown with -s, as `make fuzz` runs it)
        sys.stdout.write(run.stdout[run.stdout.rfind("SUMMARY") :])
    failed = [run for run in runs if run.returncode != 0]
    report = "\n\n".join(run.stdout + run.stderr for run in failed)
    assert not failed, (
        f"Schemathesis found:\n{report}\n--- server errors ---\n{_errors(seeded.log)}"
    )


def _errors(log: Path) -> str:
    """The server log without its access lines and expected 4xx warnings: the tracebacks."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = [line for line in lines if " - - [" not in line and "WARNING django.request" not in line]
    return "\n".join(kept[-400:])
