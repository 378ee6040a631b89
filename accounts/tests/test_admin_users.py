"""The user admin: today's usage against each user's limits in the list (in a fixed number of
queries), the quota override inline on the user page, and the activate / staff actions."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import UserQuota
from chat.models import Conversation, Message, MessageStatus, Role
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db

USERS = "/admin/auth/user/"


@pytest.fixture
def root(django_user_model: Any, password: str) -> Any:
    return django_user_model.objects.create_superuser("root", "root@example.com", password)


@pytest.fixture
def admin_client(client: Any, root: Any) -> Any:
    client.force_login(root)
    return client


def spend(user: Any, *answers: tuple[int, int]) -> None:
    conversation = Conversation.objects.create(owner=user)
    for prompt, completion in answers:
        message = Message.objects.create(
            conversation=conversation,
            role=Role.ASSISTANT,
            status=MessageStatus.COMPLETE,
            prompt_tokens=prompt,
            completion_tokens=completion,
        )
        UsageRecord.objects.create(  # what the answer service writes with each answer
            user=user,
            conversation=conversation,
            message=message,
            provider="offline",
            status=message.status,
            prompt_tokens=prompt,
            completion_tokens=completion,
        )


def _row(page: str, username: str) -> str:
    start = page.index(f">{username}</a>")
    return page[start : page.index("</tr>", start)]


def test_the_list_shows_todays_usage_against_each_users_limits(admin_client, alice, bob, settings):
    settings.QUOTA_DAILY_TOKENS = 0
    settings.QUOTA_DAILY_MESSAGES = 10
    spend(alice, (1200, 300), (100, 0))
    spend(bob, (5, 5))
    UserQuota.objects.create(user=alice, daily_tokens=2000)

    page = admin_client.get(USERS).content.decode()

    assert "1,600 / 2,000" in _row(page, "alice")  # her override
    assert "2 / 10" in _row(page, "alice")  # the default answer limit
    assert ">10<" in _row(page, "bob")  # no token limit: only what he used
    assert "1 / 10" in _row(page, "bob")


def test_the_list_counts_usage_in_the_same_queries_for_more_users(
    admin_client, django_user_model, alice
):
    spend(alice, (1, 1))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(USERS).status_code == 200
        return len(captured)

    few = queries()
    for i in range(5):
        user = django_user_model.objects.create_user(f"user{i}", f"user{i}@example.com", "x")
        spend(user, (i, i), (i, i))
        UserQuota.objects.create(user=user, daily_tokens=100)

    assert queries() == few


def test_the_quota_override_is_edited_inline_on_the_user_page(admin_client, alice):
    page = admin_client.get(f"{USERS}{alice.pk}/change/").content.decode()
    assert "Daily quota override" in page and 'name="quota-0-daily_tokens"' in page

    response = admin_client.post(
        f"{USERS}{alice.pk}/change/",
        {
            "username": "alice",
            "email": "alice@example.com",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
            "quota-TOTAL_FORMS": "1",
            "quota-INITIAL_FORMS": "0",
            "quota-MIN_NUM_FORMS": "0",
            "quota-MAX_NUM_FORMS": "1",
            "quota-0-daily_tokens": "5000",
            "quota-0-daily_messages": "0",
            "quota-0-user": str(alice.pk),
        },
    )

    assert response.status_code == 302, response.content.decode()[-3000:]
    quota = UserQuota.objects.get(user=alice)
    assert (quota.daily_tokens, quota.daily_messages) == (5000, 0)


def _act(admin_client: Any, action: str, *users: Any) -> Any:
    return admin_client.post(
        USERS,
        {"action": action, "_selected_action": [u.pk for u in users]},
        follow=True,
    )


def test_actions_deactivate_activate_and_change_staff_status(admin_client, alice, bob):
    _act(admin_client, "deactivate", alice, bob)
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.is_active, bob.is_active) == (False, False)

    _act(admin_client, "activate", alice)
    _act(admin_client, "grant_staff", bob)
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.is_active, bob.is_active, bob.is_staff) == (True, False, True)

    _act(admin_client, "revoke_staff", bob)
    bob.refresh_from_db()
    assert bob.is_staff is False


def test_an_administrator_cannot_deactivate_themself(admin_client, root, alice):
    response = _act(admin_client, "deactivate", root, alice)

    root.refresh_from_db()
    alice.refresh_from_db()
    assert root.is_active and alice.is_active  # nobody changed
    assert "You cannot deactivate yourself" in response.content.decode()


def test_a_deactivated_user_cannot_sign_in(admin_client, alice, password):
    from django.test import Client

    _act(admin_client, "deactivate", alice)
    theirs = Client()

    response = theirs.post("/accounts/login/", {"login": "alice", "password": password})

    assert "_auth_user_id" not in theirs.session
    assert (response.status_code, response["Location"]) == (302, "/accounts/inactive/")
