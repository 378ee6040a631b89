"""The progress websocket, through the real ASGI application with an in-memory layer."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from documents import services
from documents.models import KnowledgeBase
from documents.progress import ProgressManager
from raggen.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(kb_id: int, cookie: str | None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, f"/ws/kb/{kb_id}/progress/", headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def _session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def test_the_owner_receives_progress_events_of_the_knowledge_base(alice):
    kb = await KnowledgeBase.objects.acreate(name="Docs", owner=alice)
    cookie = await sync_to_async(_session_cookie)(alice)
    communicator = await _connect(kb.pk, cookie)
    await sync_to_async(ProgressManager(kb.pk).send)(3, "embedding", 40, pages_done=2)
    event = await communicator.receive_json_from(timeout=5)
    assert event == {
        "type": "progress",
        "document_id": 3,
        "status": "embedding",
        "percent": 40,
        "pages_done": 2,
        "failure_reason": "",
    }
    await sync_to_async(ProgressManager(kb.pk + 1).send)(4, "indexed", 100)
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_the_owner_receives_the_re_embedding_progress_of_a_switch_of_encoder(alice):
    kb = await KnowledgeBase.objects.acreate(name="Docs", owner=alice)
    cookie = await sync_to_async(_session_cookie)(alice)
    communicator = await _connect(kb.pk, cookie)

    for done in (1, 3):
        await sync_to_async(ProgressManager(kb.pk).reembed)(done, 3)

    received = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
    assert received == [
        {"type": "reembed", "percent": 33, "done": 1, "total": 3},
        {"type": "reembed", "percent": 100, "done": 3, "total": 3},
    ]
    await communicator.disconnect()


async def test_an_anonymous_socket_is_closed_with_4401(alice):
    kb = await KnowledgeBase.objects.acreate(name="Docs", owner=alice)
    communicator = await _connect(kb.pk, None)
    message = await communicator.receive_output(timeout=5)
    assert message == {"type": "websocket.close", "code": 4401}


async def test_another_users_knowledge_base_is_closed_with_4404_and_leaks_nothing(alice, bob):
    kb = await KnowledgeBase.objects.acreate(name="Docs", owner=alice)
    cookie = await sync_to_async(_session_cookie)(bob)
    communicator = await _connect(kb.pk, cookie)
    message = await communicator.receive_output(timeout=5)
    assert message == {"type": "websocket.close", "code": 4404}
    await sync_to_async(ProgressManager(kb.pk).send)(3, "embedding", 40)
    assert await communicator.receive_nothing(timeout=0.3)


async def _share(kb: KnowledgeBase, owner: Any, username: str) -> int:
    share = await sync_to_async(services.knowledge_base_share)(
        knowledge_base=kb, actor=owner, user=username, role="viewer"
    )
    return int(share.pk)


async def _unshare(kb: KnowledgeBase, owner: Any, share_id: int) -> None:
    await sync_to_async(services.knowledge_base_unshare)(
        knowledge_base=kb, actor=owner, share_id=share_id
    )


async def test_a_withdrawn_share_closes_that_users_socket_and_only_theirs(alice, bob):
    kb = await KnowledgeBase.objects.acreate(name="Docs", owner=alice)
    share_id = await _share(kb, alice, "bob")
    guest = await _connect(kb.pk, await sync_to_async(_session_cookie)(bob))
    owner = await _connect(kb.pk, await sync_to_async(_session_cookie)(alice))
    await sync_to_async(ProgressManager(kb.pk).send)(3, "embedding", 40)
    assert (await guest.receive_json_from(timeout=5))["document_id"] == 3
    assert (await owner.receive_json_from(timeout=5))["document_id"] == 3

    await _unshare(kb, alice, share_id)
    assert await guest.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    await sync_to_async(ProgressManager(kb.pk).send)(4, "indexed", 100)
    assert (await owner.receive_json_from(timeout=5))["document_id"] == 4
    assert await guest.receive_nothing(timeout=0.3)
    await owner.disconnect()


async def test_a_lost_access_notice_still_forwards_nothing_to_a_withdrawn_user(
    alice, bob, monkeypatch
):
    """The notice only makes the close immediate: access is checked before each event too."""
    monkeypatch.setattr(ProgressManager, "access_changed", lambda self: None, raising=False)
    kb = await KnowledgeBase.objects.acreate(name="Docs", owner=alice)
    share_id = await _share(kb, alice, "bob")
    guest = await _connect(kb.pk, await sync_to_async(_session_cookie)(bob))
    await _unshare(kb, alice, share_id)
    assert await guest.receive_nothing(timeout=0.3)  # no notice arrived
    await sync_to_async(ProgressManager(kb.pk).send)(5, "embedding", 10)
    assert await guest.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    assert await guest.receive_nothing(timeout=0.3)


async def test_deleting_the_knowledge_base_closes_its_sockets(alice):
    kb = await KnowledgeBase.objects.acreate(name="Docs", owner=alice)
    owner = await _connect(kb.pk, await sync_to_async(_session_cookie)(alice))
    await sync_to_async(services.knowledge_base_delete)(kb=kb)
    assert await owner.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
