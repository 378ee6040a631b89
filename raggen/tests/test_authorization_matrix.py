"""The authorization matrix: every JSON API operation, every page and both websockets, each
asked by six kinds of caller about the owner's objects, with the answer each must get.

Callers: ``anonymous``; ``other`` (a signed-in user with no access); ``viewer`` and ``editor``
(the knowledge base is shared with them); ``owner``; ``staff`` (``is_staff``, not the owner: staff
manage others' objects in the admin, which is audited, never through the app). No access looks
exactly like a missing object (404, never 403), so ids do not leak. A new API operation without a
row here fails :func:`test_every_api_operation_is_in_the_matrix`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts import services as account_services
from chat.models import Citation, Conversation, Message, MessageStatus, PromptTemplate, Role
from chat.tests.factories import make_indexed_kb
from documents import services as document_services
from documents.models import Chunk, Document, KnowledgeBase, ShareRole
from documents.tests.helpers import upload_bytes

ROLES = ("anonymous", "other", "viewer", "editor", "owner", "staff")

# Transactional: uploads run their ingestion at once, in the test's thread, after commit.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_encoder")]


# --- expected answers by kind of operation -------------------------------------------------------


def _read(ok: int) -> dict[str, int]:
    """Reading the owner's knowledge base or its documents: anyone it is shared with."""
    return {"anonymous": 401, "other": 404, "viewer": ok, "editor": ok, "owner": ok, "staff": 404}


def _edit(ok: int) -> dict[str, int]:
    """Changing documents or settings: the owner and editors; a viewer is told why not."""
    return {"anonymous": 401, "other": 404, "viewer": 403, "editor": ok, "owner": ok, "staff": 404}


def _manage(ok: int) -> dict[str, int]:
    """Deleting or sharing the knowledge base: the owner only."""
    return {"anonymous": 401, "other": 404, "viewer": 403, "editor": 403, "owner": ok, "staff": 404}


def _own(ok: int) -> dict[str, int]:
    """The owner's conversations, personal templates and tokens: nobody else, not even staff."""
    return dict.fromkeys(ROLES, 404) | {"anonymous": 401, "owner": ok}


def _any(ok: int) -> dict[str, int]:
    """Collections and tools of one's own: any signed-in user."""
    return dict.fromkeys(ROLES, ok) | {"anonymous": 401}


# --- the world every case starts from -----------------------------------------------------------


@dataclass
class World:
    kb: KnowledgeBase
    doc: Document
    chunk: Chunk
    conversation: Conversation
    template: PromptTemplate
    token_id: int
    viewer_share_id: int
    users: dict[str, Any]

    def ids(self) -> dict[str, int]:
        return {
            "kb": self.kb.pk,
            "doc": self.doc.pk,
            "chunk": self.chunk.pk,
            "share": self.viewer_share_id,
            "conv": self.conversation.pk,
            "tpl": self.template.pk,
            "token": self.token_id,
        }

    def client(self, role: str) -> Client:
        client = Client()
        if role != "anonymous":
            client.force_login(self.users[role])
        return client


@pytest.fixture
def users(django_user_model: Any, alice: Any, bob: Any) -> dict[str, Any]:
    return {
        "owner": alice,
        "other": bob,
        "viewer": django_user_model.objects.create_user("vera", "vera@example.com", "pw-vera-1"),
        "editor": django_user_model.objects.create_user("ed", "ed@example.com", "pw-ed-1"),
        "staff": django_user_model.objects.create_user(
            "stella", "stella@example.com", "pw-stella-1", is_staff=True
        ),
    }


@pytest.fixture
def make_world(users: dict[str, Any]) -> Callable[[], World]:
    """Builds the owner's objects afresh (each call: a new knowledge base, document, shares,
    conversation with a cited answer, personal template and API token)."""
    counter = iter(range(1, 1000))

    def build() -> World:
        alice = users["owner"]
        kb = make_indexed_kb(alice, f"Company {next(counter)}")
        doc = upload_bytes(kb, "policy.txt", b"Travel costs are refunded within ten days.", alice)
        assert doc.status == "indexed", doc.failure_reason
        viewer_share = document_services.knowledge_base_share(
            knowledge_base=kb, actor=alice, user="vera", role=ShareRole.VIEWER
        )
        document_services.knowledge_base_share(
            knowledge_base=kb, actor=alice, user="ed@example.com", role=ShareRole.EDITOR
        )
        conversation = Conversation.objects.create(owner=alice, title="Payments")
        conversation.knowledge_bases.set([kb])
        Message.objects.create(
            conversation=conversation, role=Role.USER, content="When are invoices paid?"
        )
        answer = Message.objects.create(
            conversation=conversation,
            role=Role.ASSISTANT,
            content="Within 30 days [1].",
            status=MessageStatus.COMPLETE,
        )
        chunk = Chunk.objects.filter(document=doc).first()
        assert chunk is not None
        Citation.objects.create(
            message=answer,
            number=1,
            chunk=chunk,
            document=doc,
            document_title=doc.title,
            score=0.9,
            quote=chunk.text,
        )
        template = PromptTemplate.objects.create(
            owner=alice, name=f"Summary {kb.pk}", body="Summarise {text}"
        )
        token, _ = account_services.api_token_create(user=alice, name="ci")
        return World(kb, doc, chunk, conversation, template, token.pk, viewer_share.pk, users)

    return build


@pytest.fixture
def world(make_world: Callable[[], World]) -> World:
    return make_world()


# --- the API ------------------------------------------------------------------------------------


def _file() -> dict[str, Any]:
    return {"files": SimpleUploadedFile("new.txt", b"A brand new document about parking.")}


def _version() -> dict[str, Any]:
    return {"file": SimpleUploadedFile("policy.txt", b"Travel costs are refunded in a week.")}


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # an OpenAPI path with {placeholders} filled from World.ids()
    expected: dict[str, int]
    body: Callable[[World], Any] | None = None
    multipart: Callable[[], dict[str, Any]] | None = None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


KB = "/api/v1/knowledge-bases/{kb_id}"
DOC = "/api/v1/documents/{doc_id}"
CONV = "/api/v1/conversations/{conversation_id}"

CASES = [
    # knowledge bases
    Case("GET", "/api/v1/knowledge-bases", _any(200)),
    Case("POST", "/api/v1/knowledge-bases", _any(201), lambda w: {"name": "Mine"}),
    Case("GET", KB, _read(200)),
    Case("PATCH", KB, _edit(200), lambda w: {"description": "changed"}),
    Case("DELETE", KB, _manage(204)),
    Case("POST", KB + "/reindex", _edit(202)),
    Case("GET", KB + "/shares", _manage(200)),
    Case("POST", KB + "/shares", _manage(202), lambda w: {"user": "bob", "role": "viewer"}),
    Case("PATCH", KB + "/shares/{share_id}", _manage(200), lambda w: {"role": "editor"}),
    Case("DELETE", KB + "/shares/{share_id}", _manage(204)),
    Case("GET", KB + "/documents", _read(200)),
    Case("POST", KB + "/documents", _edit(201), multipart=_file),
    # documents
    Case("GET", DOC, _read(200)),
    Case("DELETE", DOC, _edit(204)),
    Case("POST", DOC + "/versions", _edit(201), multipart=_version),
    Case("POST", DOC + "/reindex", _edit(202)),
    Case("POST", DOC + "/retry", _edit(202)),
    Case("GET", DOC + "/file", _read(200)),
    # vectors
    Case("POST", "/api/v1/vectors/embed", _any(200), lambda w: {"texts": ["hello"]}),
    Case(
        "POST",
        "/api/v1/vectors/search",
        _read(200),
        lambda w: {"knowledge_base_ids": [w.kb.pk], "query": "invoices"},
    ),
    Case("POST", "/api/v1/vectors/{kb_id}/texts", _edit(201), lambda w: {"texts": ["Parking."]}),
    Case(
        "POST", "/api/v1/vectors/{kb_id}/delete", _edit(200), lambda w: {"chunk_ids": [w.chunk.pk]}
    ),
    Case("GET", "/api/v1/vectors/{kb_id}/stats", _read(200)),
    Case("GET", "/api/v1/vectors/{kb_id}/documents/{document_id}/vector", _read(200)),
    Case("GET", "/api/v1/vectors/{kb_id}/documents/{document_id}/similar", _read(200)),
    # chat
    Case("GET", "/api/v1/chat/providers", _any(200)),
    Case("GET", "/api/v1/conversations", _any(200)),
    Case(
        "POST",
        "/api/v1/conversations",
        _read(201),  # attaching the owner's knowledge base needs read access to it
        lambda w: {"title": "Mine", "knowledge_base_ids": [w.kb.pk]},
    ),
    Case("GET", CONV, _own(200)),
    Case("PATCH", CONV, _own(200), lambda w: {"title": "Renamed"}),
    Case("DELETE", CONV, _own(204)),
    Case("GET", CONV + "/messages", _own(200)),
    Case("POST", CONV + "/messages", _own(200), lambda w: {"content": "When are invoices paid?"}),
    Case("POST", CONV + "/stop", _own(200)),
    Case("GET", CONV + "/export", _own(200)),
    Case("GET", "/api/v1/prompt-templates", _any(200)),
    Case("POST", "/api/v1/prompt-templates", _any(201), lambda w: {"name": "T", "body": "B"}),
    Case("PATCH", "/api/v1/prompt-templates/{template_id}", _own(200), lambda w: {"body": "New"}),
    Case("DELETE", "/api/v1/prompt-templates/{template_id}", _own(204)),
    Case(
        "POST",
        "/api/v1/prompt-templates/{template_id}/render",
        _own(200),
        lambda w: {"values": {"text": "x"}},
    ),
    # accounts
    Case("GET", "/api/v1/tokens", _any(200)),
    Case("POST", "/api/v1/tokens", _any(201), lambda w: {"name": "mine"}),
    Case("DELETE", "/api/v1/tokens/{token_id}", _own(204)),
]

_PLACEHOLDERS = {
    "{kb_id}": "kb",
    "{doc_id}": "doc",
    "{document_id}": "doc",
    "{share_id}": "share",
    "{conversation_id}": "conv",
    "{template_id}": "tpl",
    "{token_id}": "token",
}


def _url(path: str, world: World) -> str:
    ids = world.ids()
    for placeholder, name in _PLACEHOLDERS.items():
        path = path.replace(placeholder, str(ids[name]))
    assert "{" not in path, path
    return path


def _operations() -> set[str]:
    from raggen.api import api

    schema = api.get_openapi_schema()
    return {
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method in operations
    }


def test_every_api_operation_is_in_the_matrix() -> None:
    assert _operations() - {case.key for case in CASES} == set()
    assert {case.key for case in CASES} - _operations() == set()


def _ask(world: World, case: Case, role: str) -> Any:
    client = world.client(role)
    url = _url(case.path, world)
    if case.multipart is not None:
        return client.post(url, case.multipart())
    if case.body is not None:
        body = json.dumps(case.body(world))
        return client.generic(case.method, url, body, content_type="application/json")
    return client.generic(case.method, url)


# The least privileged first, so that a change made by one caller rarely disturbs the next; after
# any change that succeeded the world is built afresh.
_ORDER = ("anonymous", "other", "staff", "viewer", "editor", "owner")


@pytest.mark.parametrize("case", CASES, ids=[case.key for case in CASES])
def test_api(make_world: Callable[[], World], case: Case) -> None:
    world = make_world()
    wrong = []
    for role in _ORDER:
        response = _ask(world, case, role)
        expected = case.expected[role]
        if response.status_code != expected:
            wrong.append((role, expected, response.status_code, response.content[:200]))
        elif expected == 404:
            # Someone else's object gets the answer of a missing one, naming nothing of it.
            detail = response.json()["detail"]
            assert "not found" in detail.lower(), (role, detail)
        if case.method != "GET" and 200 <= response.status_code < 300:
            world = make_world()
    assert wrong == []


# --- what each list and search shows ------------------------------------------------------------


def test_lists_show_each_user_only_what_they_may_see(world: World) -> None:
    for role in ("other", "staff"):
        client = world.client(role)
        assert client.get("/api/v1/knowledge-bases").json() == []
        assert client.get("/api/v1/conversations?q=Payments").json()["items"] == []
        assert client.get("/api/v1/prompt-templates").json() == [] or all(
            t["id"] != world.template.pk for t in client.get("/api/v1/prompt-templates").json()
        )
        assert all(t["id"] != world.token_id for t in client.get("/api/v1/tokens").json())
    for role, expected in (("viewer", "viewer"), ("editor", "editor"), ("owner", "owner")):
        kbs = world.client(role).get("/api/v1/knowledge-bases").json()
        assert [(kb["id"], kb["role"], kb["owner"]) for kb in kbs] == [
            (world.kb.pk, expected, "alice")
        ]
    # Conversations stay private even from those the knowledge base is shared with.
    assert world.client("viewer").get("/api/v1/conversations?q=invoices").json()["items"] == []


def test_a_search_over_several_bases_is_refused_whole_when_one_is_not_readable(
    world: World,
) -> None:
    bobs = document_services.knowledge_base_create(owner=world.users["other"], name="Bob's")
    response = world.client("other").post(
        "/api/v1/vectors/search",
        {"knowledge_base_ids": [bobs.pk, world.kb.pk], "query": "invoices"},
        content_type="application/json",
    )
    assert response.status_code == 404
    hits = (
        world.client("viewer")
        .post(
            "/api/v1/vectors/search",
            {"knowledge_base_ids": [world.kb.pk], "query": "invoices paid"},
            content_type="application/json",
        )
        .json()["hits"]
    )
    assert hits and {hit["knowledge_base_id"] for hit in hits} == {world.kb.pk}


def test_withdrawn_sharing_stops_search_documents_and_retrieval(world: World) -> None:
    viewer = world.client("viewer")
    created = viewer.post(
        "/api/v1/conversations",
        {"title": "Mine", "knowledge_base_ids": [world.kb.pk]},
        content_type="application/json",
    ).json()
    first = viewer.post(
        f"/api/v1/conversations/{created['id']}/messages",
        {"content": "When are invoices paid?"},
        content_type="application/json",
    ).json()
    assert first["status"] == "complete"
    assert first["citations"], "a viewer's answer draws on the shared knowledge base"

    owner = world.client("owner")
    assert (
        owner.delete(
            f"/api/v1/knowledge-bases/{world.kb.pk}/shares/{world.viewer_share_id}"
        ).status_code
        == 204
    )

    assert viewer.get(f"/api/v1/knowledge-bases/{world.kb.pk}").status_code == 404
    assert viewer.get(f"/api/v1/documents/{world.doc.pk}/file").status_code == 404
    second = viewer.post(
        f"/api/v1/conversations/{created['id']}/messages",
        {"content": "When are invoices paid?"},
        content_type="application/json",
    ).json()
    assert second["status"] == "complete"
    assert second["citations"] == []
    assert "30 days" not in second["content"]


def test_sharing_changes_are_in_the_audit_trail(world: World) -> None:
    from accounts.models import AuditAction, AuditEvent

    owner = world.client("owner")
    owner.patch(
        f"/api/v1/knowledge-bases/{world.kb.pk}/shares/{world.viewer_share_id}",
        {"role": "editor"},
        content_type="application/json",
    )
    owner.delete(f"/api/v1/knowledge-bases/{world.kb.pk}/shares/{world.viewer_share_id}")
    events = AuditEvent.objects.filter(action=AuditAction.SHARING_CHANGED).order_by("pk")
    assert [(e.details["before"], e.details["after"]) for e in events] == [
        (None, "viewer"),  # the world's two shares, made by the owner
        (None, "editor"),
        ("viewer", "editor"),
        ("editor", None),
    ]
    assert {e.actor_id for e in events} == {world.users["owner"].pk}
    assert events.last().details["user_id"] == world.users["viewer"].pk  # type: ignore[union-attr]


# --- pages --------------------------------------------------------------------------------------

PAGES = [
    ("/", _any(200)),
    ("/c/{conversation_id}/", _own(200)),
    ("/kb/", _any(200)),
    ("/kb/{kb_id}/", _read(200)),
    ("/documents/{doc_id}/", _read(200)),
    ("/account/tokens/", _any(200)),
]


@pytest.mark.parametrize("page", [p for p, _ in PAGES])
def test_pages(world: World, page: str) -> None:
    wrong = []
    for role in ROLES:
        response = world.client(role).get(_url(page, world))
        if role == "anonymous":
            assert response.status_code == 302
            assert response["Location"].startswith("/accounts/login/")
        elif response.status_code != dict(PAGES)[page][role]:
            wrong.append((role, dict(PAGES)[page][role], response.status_code))
    assert wrong == []


def test_the_knowledge_base_page_offers_each_role_only_what_it_may_do(world: World) -> None:
    page = {
        role: world.client(role).get(f"/kb/{world.kb.pk}/").content.decode()
        for role in ("viewer", "editor", "owner")
    }
    assert 'id="drop-zone"' not in page["viewer"]
    assert 'data-action="delete"' not in page["viewer"]
    assert 'id="kb-settings-form"' not in page["viewer"]
    assert 'id="drop-zone"' in page["editor"] and 'id="kb-settings-form"' in page["editor"]
    assert 'id="kb-delete"' not in page["editor"] and 'id="share-form"' not in page["editor"]
    assert 'id="kb-delete"' in page["owner"] and 'id="share-form"' in page["owner"]
    assert "vera" in page["owner"] and "ed" in page["owner"]


def test_the_revoke_form_of_someone_elses_token_is_404(world: World) -> None:
    response = world.client("other").post(f"/account/tokens/{world.token_id}/revoke/")
    assert response.status_code == 404


# --- websockets ---------------------------------------------------------------------------------


def _cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def _first_frame(world: World, role: str, path: str) -> dict[str, Any]:
    from raggen.asgi import application

    headers = [(b"origin", b"http://localhost")]
    if role != "anonymous":
        headers.append((b"cookie", (await sync_to_async(_cookie)(world.users[role])).encode()))
    communicator = WebsocketCommunicator(application, path, headers)
    connected, code = await communicator.connect(timeout=5)
    if not connected:
        return {"type": "websocket.close", "code": code}
    output = (
        await communicator.receive_output(timeout=0.5)
        if not await communicator.receive_nothing(timeout=0.2)
        else {"type": "open"}
    )
    await communicator.disconnect()
    return output


PROGRESS = {"anonymous": 4401, "other": 4404, "viewer": 0, "editor": 0, "owner": 0, "staff": 4404}
CHAT = {"anonymous": 4401, "other": 4404, "viewer": 4404, "editor": 4404, "owner": 0, "staff": 4404}


@pytest.mark.parametrize("socket", ["progress", "chat"])
async def test_websockets(world: World, socket: str) -> None:
    path = (
        f"/ws/kb/{world.kb.pk}/progress/"
        if socket == "progress"
        else f"/ws/chat/{world.conversation.pk}/"
    )
    expected = PROGRESS if socket == "progress" else CHAT
    seen = {}
    for role in ROLES:
        frame = await _first_frame(world, role, path)
        seen[role] = frame["code"] if frame.get("type") == "websocket.close" else 0
    assert seen == expected
