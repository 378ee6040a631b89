"""The API keeps the contract its OpenAPI schema publishes: bounded numbers, JSON-object bodies
of the declared types, every error in the declared error shape, every status code declared, and
the schema readable with an API token. (``test_fuzz.py`` runs Schemathesis over all of it.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from accounts.models import ApiTokenScope
from accounts.services import api_token_create
from core.schemas import ErrorOut
from documents.models import KnowledgeBase

pytestmark = pytest.mark.django_db
API = "/api/v1"


@pytest.fixture
def bearer(alice: Any) -> dict[str, str]:
    _, plaintext = api_token_create(user=alice, name="contract", scope=ApiTokenScope.WRITE)
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def _error(response: Any, status: int) -> ErrorOut:
    assert response.status_code == status, response.content
    assert response.headers["Content-Type"].startswith("application/json")
    return ErrorOut.model_validate(response.json())


def test_the_openapi_schema_is_readable_with_an_api_token(client, bearer):
    response = client.get(f"{API}/openapi.json", **bearer)
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["ApiTokenAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    bad = client.get(f"{API}/openapi.json", HTTP_AUTHORIZATION="Bearer rg_nope")
    assert _error(bad, 401).detail == "This API token is not valid."


@pytest.mark.parametrize(
    "query",
    [
        "limit=" + "9" * 36,  # SQLite: "datatype mismatch", a 500
        "offset=" + "9" * 36,
        "limit=0",
        "offset=-1",
        "limit=501",
    ],
)
def test_pagination_out_of_range_is_a_422_naming_the_field(client, bearer, query):
    error = _error(client.get(f"{API}/conversations?{query}", **bearer), 422)
    assert isinstance(error.detail, list)
    assert error.detail[0].loc == ["query", query.split("=")[0]]


@pytest.mark.parametrize(
    "query", ["chunk_offset=-1", "chunk_offset=" + "9" * 36, "chunk_limit=0", "chunk_limit=501"]
)
def test_document_chunk_window_out_of_range_is_a_422(client, bearer, alice, query):
    from documents.tests.helpers import upload_bytes

    kb = KnowledgeBase.objects.create(name="Contracts", owner=alice)
    document = upload_bytes(kb, "a.txt", b"Some text about contracts.")
    error = _error(client.get(f"{API}/documents/{document.pk}?{query}", **bearer), 422)
    assert isinstance(error.detail, list)
    assert error.detail[0].loc == ["query", query.split("=")[0]]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/conversations", [None, None]),
        ("post", "/prompt-templates", {"name": "n", "body": "b", "params": [None, None]}),
        ("post", "/knowledge-bases", {"name": "n", "keyword_weight": "2"}),
        ("post", "/knowledge-bases", {"name": "n", "max_chunk_tokens": 200.5}),
        ("post", "/conversations", {"params": {"top_k": "5"}}),
        ("post", "/vectors/embed", {"texts": []}),
    ],
)
def test_a_body_the_schema_calls_invalid_is_a_422(client, bearer, method, path, body):
    response = getattr(client, method)(
        f"{API}{path}", json.dumps(body), content_type="application/json", **bearer
    )
    error = _error(response, 422)
    assert isinstance(error.detail, list) and error.detail


def test_application_errors_and_401_have_the_declared_error_shape(client, bearer):
    assert _error(client.get(f"{API}/knowledge-bases/999999", **bearer), 404).detail
    assert _error(client.get(f"{API}/knowledge-bases"), 401).detail


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_operation_declares_its_auth_and_the_error_shape_of_each_error_code():
    from raggen.api import api

    schema = api.get_openapi_schema()
    undeclared = []
    for method, path, operation in _operations(schema):
        assert operation.get("security"), f"{method} {path} declares no auth"
        responses = {int(code): value for code, value in operation["responses"].items()}
        for code in (401, 422):
            if code not in responses:
                undeclared.append(f"{method} {path} {code}")
        for code, response in responses.items():
            if code >= 400:
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, code)
    assert undeclared == []


def test_reindexing_a_version_swapped_out_meanwhile_is_a_conflict_not_a_500(alice):
    """Found by the fuzzer: two quick settings changes; the first one's new version was swapped
    in (and the old one deleted) while the second read the old one as current."""
    from core.errors import Conflict
    from documents import services
    from documents.models import Document, DocumentStatus
    from documents.tests.helpers import upload_bytes

    kb = KnowledgeBase.objects.create(name="Contracts", owner=alice)
    document = upload_bytes(kb, "a.txt", b"Some text about contracts.")
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.INDEXED)
    document.refresh_from_db()
    Document.objects.filter(pk=document.pk).delete()  # what the swap does to the old version
    with pytest.raises(Conflict):
        services.document_reindex(document=document)
    assert services.knowledge_base_reindex(kb=kb) == 0


def test_a_multipart_body_with_no_parts_gets_a_json_answer_from_the_real_server(
    transactional_db, alice, tmp_path
):
    """Twisted (under daphne) parsed form bodies itself and answered one with no parts with a
    bare 400: no body, no Content-Type, before the application saw the request."""
    import httpx

    from conftest import running_daphne, subprocess_env

    kb = KnowledgeBase.objects.create(name="Contracts", owner=alice)
    _, token = api_token_create(user=alice, name="contract", scope=ApiTokenScope.WRITE)
    env = subprocess_env(REDIS_URL="", BACKGROUND_TASKS="thread", LOG_LEVEL="warning")
    with running_daphne(env, tmp_path / "server.log") as port:
        response = httpx.post(
            f"http://127.0.0.1:{port}{API}/knowledge-bases/{kb.pk}/documents",
            content=b"--b0undary--\r\n",
            headers={
                "Content-Type": "multipart/form-data; boundary=b0undary",
                "Authorization": f"Bearer {token}",
            },
            timeout=30,
        )
    error = _error(response, 422)
    assert isinstance(error.detail, list)
    assert (error.detail[0].loc, error.detail[0].msg) == (["file", "files"], "Field required")


def test_a_rate_limited_request_gets_the_declared_429_body_and_retry_after(
    client, bearer, alice, settings
):
    settings.RATE_LIMIT_UPLOAD_PER_MINUTE = 1
    kb = KnowledgeBase.objects.create(name="Contracts", owner=alice)
    url = f"{API}/knowledge-bases/{kb.pk}/documents"
    from django.core.files.uploadedfile import SimpleUploadedFile

    def upload(name: str) -> Any:
        return client.post(url, {"files": [SimpleUploadedFile(name, b"Contract text.")]}, **bearer)

    assert upload("a.txt").status_code == 201
    response = upload("b.txt")
    error = _error(response, 429)
    assert (error.code, error.limit_value) == ("rate_limited", 1)
    assert response.headers["Retry-After"] == str(error.retry_after)
