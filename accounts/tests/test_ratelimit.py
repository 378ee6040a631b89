"""Rate limits on the chat (API and websocket), uploads and the vector API (embed, search): 429
with Retry-After, per user, and one count shared by every process through Redis."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from chat.models import Conversation, Message
from chat.routing import websocket_urlpatterns
from conftest import ROOT, subprocess_env
from core.ratelimit import RateLimited, rate_limit_hit
from documents.models import Document, KnowledgeBase

API = "/api/v1"


@pytest.fixture(autouse=True)
def _mid_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limiter's clock starts in the middle of a one-minute window and runs on from there:
    a test's requests must not straddle a window boundary, where the count starts again."""
    import types

    from core import ratelimit

    started = time.time()
    middle = (started // ratelimit.WINDOW + 0.5) * ratelimit.WINDOW
    clock = types.SimpleNamespace(time=lambda: middle + (time.time() - started))
    monkeypatch.setattr(ratelimit, "time", clock)


def test_a_window_allows_the_limit_then_refuses_until_it_ends():
    hits = [rate_limit_hit(scope="t", key="k", limit=3, now=120.0 + s) for s in (0, 10, 20)]
    assert hits == [1, 2, 3]

    # The message is in the active language: English here, whatever an earlier test activated.
    with translation.override("en"), pytest.raises(RateLimited) as raised:
        rate_limit_hit(scope="t", key="k", limit=3, now=165.2)

    assert raised.value.retry_after == 15  # the window ends at 180
    assert raised.value.extra == {"code": "rate_limited", "limit_value": 3, "retry_after": 15}
    assert "at most 3 a minute" in raised.value.message
    assert rate_limit_hit(scope="t", key="k", limit=3, now=180.0) == 1  # a new window
    assert rate_limit_hit(scope="t", key="other", limit=3, now=170.0) == 1  # another key


def test_a_limit_of_zero_counts_nothing():
    assert [rate_limit_hit(scope="t", key="k", limit=0) for _ in range(100)] == [0] * 100


def _ask(client: Any, conversation: Conversation) -> Any:
    return client.post(
        f"{API}/conversations/{conversation.pk}/messages",
        {"content": "When are invoices paid?"},
        content_type="application/json",
    )


@pytest.mark.django_db(transaction=True)
def test_the_chat_api_answers_429_with_retry_after_per_user(client, alice, bob, settings):
    settings.RATE_LIMIT_CHAT_PER_MINUTE = 2
    mine = Conversation.objects.create(owner=alice, provider="offline")
    theirs = Conversation.objects.create(owner=bob, provider="offline")
    client.force_login(alice)
    assert [_ask(client, mine).status_code for _ in range(2)] == [200, 200]
    before = Message.objects.count()

    refused = _ask(client, mine)

    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "rate_limited" and body["limit_value"] == 2
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["Retry-After"] == str(body["retry_after"])
    assert Message.objects.count() == before  # nothing was saved
    client.force_login(bob)
    assert _ask(client, theirs).status_code == 200  # his own count


@pytest.mark.django_db
def test_uploads_answer_429_with_retry_after_past_the_limit(alice_client, alice, settings):
    settings.RATE_LIMIT_UPLOAD_PER_MINUTE = 1
    kb = KnowledgeBase.objects.create(owner=alice, name="Docs")
    url = f"{API}/knowledge-bases/{kb.pk}/documents"

    first = alice_client.post(url, {"files": [SimpleUploadedFile("a.txt", b"Invoices.")]})
    second = alice_client.post(url, {"files": [SimpleUploadedFile("b.txt", b"Offices.")]})

    assert first.status_code == 201, first.content
    assert second.status_code == 429
    assert second.json()["code"] == "rate_limited"
    assert 1 <= int(second["Retry-After"]) <= 60
    assert list(Document.objects.values_list("original_name", flat=True)) == ["a.txt"]


@pytest.mark.django_db
def test_a_new_version_upload_counts_against_the_same_limit(alice_client, alice, settings):
    settings.RATE_LIMIT_UPLOAD_PER_MINUTE = 1
    kb = KnowledgeBase.objects.create(owner=alice, name="Docs")
    alice_client.post(
        f"{API}/knowledge-bases/{kb.pk}/documents",
        {"files": [SimpleUploadedFile("a.txt", b"Invoices.")]},
    )
    document = Document.objects.get()

    response = alice_client.post(
        f"{API}/documents/{document.pk}/versions",
        {"file": SimpleUploadedFile("a.txt", b"Invoices, version 2.")},
    )

    assert response.status_code == 429
    assert Document.objects.count() == 1


async def _until_done(comm: WebsocketCommunicator) -> list[dict[str, Any]]:
    events = []
    while True:
        events.append(await comm.receive_json_from(timeout=10))
        if events[-1]["type"] == "done":
            return events


@pytest.mark.django_db(transaction=True)
async def test_the_websocket_refuses_a_question_past_the_limit_with_a_typed_error(alice, settings):
    settings.RATE_LIMIT_CHAT_PER_MINUTE = 1
    db = database_sync_to_async
    conversation = await db(Conversation.objects.create)(owner=alice, provider="offline")
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat/{conversation.pk}/")
    comm.scope["user"] = alice
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "send", "content": "When are invoices paid?"})
    assert (await _until_done(comm))[-1]["status"] == "complete"
    saved = await Message.objects.acount()

    await comm.send_json_to({"type": "regenerate"})
    refused = await _until_done(comm)

    assert [e["type"] for e in refused] == ["error", "done"]
    assert refused[0]["code"] == "rate_limited"
    assert 1 <= refused[0]["details"]["retry_after"] <= 60
    assert refused[1]["status"] == "failed"
    assert await Message.objects.acount() == saved  # the answer was not regenerated
    await comm.disconnect()


async def test_an_in_process_cache_counts_on_the_loop_and_a_network_cache_off_it(
    alice, settings, monkeypatch
):
    from core import ratelimit

    hops: list[Any] = []

    def sync_to_async(fn: Any, **kwargs: Any) -> Any:
        hops.append(fn)

        async def call(*args: Any, **kw: Any) -> Any:
            return fn(*args, **kw)

        return call

    monkeypatch.setattr(ratelimit, "sync_to_async", sync_to_async)
    settings.RATE_LIMIT_CHAT_PER_MINUTE = 1
    await ratelimit.rate_limit_async("chat", user=alice)  # local memory: no hop
    with pytest.raises(RateLimited):
        await ratelimit.rate_limit_async("chat", user=alice)
    assert hops == []

    monkeypatch.setattr(ratelimit, "_in_process_cache", lambda: False)  # as with Redis
    with pytest.raises(RateLimited):
        await ratelimit.rate_limit_async("chat", user=alice)
    assert hops == [ratelimit.rate_limit]

    settings.RATE_LIMIT_CHAT_PER_MINUTE = 0  # no limit: nothing counted, no hop
    await ratelimit.rate_limit_async("chat", user=alice)
    assert hops == [ratelimit.rate_limit]


def test_only_local_memory_and_dummy_caches_count_as_in_process(settings):
    from core.ratelimit import _in_process_cache

    backends = {
        "django.core.cache.backends.locmem.LocMemCache": True,
        "django.core.cache.backends.dummy.DummyCache": True,
        "django.core.cache.backends.redis.RedisCache": False,
        "django.core.cache.backends.db.DatabaseCache": False,
    }
    seen = {}
    for backend in backends:
        settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "x"}}
        seen[backend] = _in_process_cache()
    assert seen == backends


# --- Across processes, through Redis ------------------------------------------------------------

_CLIENT = """
import sys, time
from pathlib import Path
import django
django.setup()
from django.core.cache import caches
from core.ratelimit import RateLimited, rate_limit_hit
folder, now = Path(sys.argv[1]), float(sys.argv[2])
(folder / f"ready-{sys.argv[3]}").touch()
while not (folder / "go").exists():
    time.sleep(0.01)
allowed = 0
for _ in range(40):
    try:
        rate_limit_hit(scope="chat", key="user:1", limit=25, now=now)
        allowed += 1
    except RateLimited:
        pass
print(type(caches["default"]).__name__, allowed)
"""


@pytest.mark.redis
def test_two_processes_share_one_count_through_redis(redis_server, tmp_path: Path):
    env = subprocess_env(REDIS_URL=redis_server, BACKGROUND_TASKS="thread")
    now = str(time.time())
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", _CLIENT, str(tmp_path), now, str(i)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline, [c.poll() for c in clients]
        time.sleep(0.05)
    (tmp_path / "go").touch()  # both hammer the same counter at once
    outputs = [c.communicate(timeout=120) for c in clients]

    assert [c.returncode for c in clients] == [0, 0], [err for _, err in outputs]
    results = [out.split() for out, _ in outputs]
    assert [backend for backend, _ in results] == ["RedisCache", "RedisCache"]
    assert sum(int(allowed) for _, allowed in results) == 25  # 80 tries, 25 allowed in all


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("endpoint", "setting"),
    [("embed", "RATE_LIMIT_EMBED_PER_MINUTE"), ("search", "RATE_LIMIT_SEARCH_PER_MINUTE")],
)
def test_the_vector_api_answers_429_with_retry_after_past_its_limit_per_user(
    client, alice, bob, settings, fake_encoder, endpoint, setting
):
    setattr(settings, setting, 3)
    payloads: dict[Any, dict[str, Any]] = {}
    for user in (alice, bob):
        kb = KnowledgeBase.objects.create(owner=user, name="Docs")
        payloads[user] = (
            {"texts": ["When are invoices paid?"]}
            if endpoint == "embed"
            else {"query": "When are invoices paid?", "knowledge_base_ids": [kb.pk]}
        )

    def call(user: Any) -> Any:
        client.force_login(user)
        return client.post(
            f"{API}/vectors/{endpoint}", payloads[user], content_type="application/json"
        )

    assert [call(alice).status_code for _ in range(3)] == [200, 200, 200]
    refused = call(alice)

    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "rate_limited" and body["limit_value"] == 3
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["Retry-After"] == str(body["retry_after"])
    assert call(bob).status_code == 200  # his own count
