"""Receivers that write the audit trail: sign-in, failed sign-in and sign-out (Django's auth
signals, which allauth sends too), and deletions of documents and knowledge bases (``post_delete``,
so that every way of deleting is recorded, without the documents app knowing about auditing).
Connected in ``AccountsConfig.ready``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_delete
from django.http import HttpRequest

from accounts.models import AuditAction
from accounts.services import audit
from core.context import current_request
from documents.signals import sharing_changed

# The names under which a log-in name reaches authenticate(): Django's form, allauth's
# username and e-mail logins.
_LOGIN_KEYS = ("username", "email", "login")


def _on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit(action=AuditAction.LOGIN, actor=user, request=request, target=user.get_username())


def _on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Only the attempted name: Django masks the password here, and we do not keep even that.
    login = next((str(credentials[k]) for k in _LOGIN_KEYS if credentials.get(k)), "")
    audit(action=AuditAction.LOGIN_FAILED, actor=None, request=request, target=login, login=login)


def _on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    target = user.get_username() if user is not None else ""
    audit(action=AuditAction.LOGOUT, actor=user, request=request, target=target)


def _acting() -> tuple[Any, HttpRequest | None]:
    """Who is deleting: the user of the request being served (session or API token), if any."""
    request = current_request.get()
    return (getattr(request, "user", None) if request is not None else None), request


def _on_document_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    actor, request = _acting()
    audit(
        action=AuditAction.DOCUMENT_DELETED,
        actor=actor,
        request=request,
        target=f"{instance.title} (#{instance.pk})",
        document_id=instance.pk,
        knowledge_base_id=instance.knowledge_base_id,
    )


def _on_knowledge_base_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    actor, request = _acting()
    audit(
        action=AuditAction.KNOWLEDGE_BASE_DELETED,
        actor=actor,
        request=request,
        target=f"{instance.name} (#{instance.pk})",
        knowledge_base_id=instance.pk,
        owner_id=instance.owner_id,
    )


def _on_sharing_changed(
    sender: Any,
    knowledge_base: Any,
    actor: Any,
    user: Any,
    before: str | None,
    after: str | None,
    **kwargs: Any,
) -> None:
    audit(
        action=AuditAction.SHARING_CHANGED,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        request=current_request.get(),
        target=f"{knowledge_base.name} (#{knowledge_base.pk}) → {user.get_username()}",
        knowledge_base_id=knowledge_base.pk,
        user_id=user.pk,
        before=before,
        after=after,
    )


def connect() -> None:
    """Connect the receivers (idempotent: each has a dispatch_uid)."""
    user_logged_in.connect(_on_login, dispatch_uid="accounts.audit.login")
    user_login_failed.connect(_on_login_failed, dispatch_uid="accounts.audit.login_failed")
    user_logged_out.connect(_on_logout, dispatch_uid="accounts.audit.logout")
    post_delete.connect(
        _on_document_deleted, sender="documents.Document", dispatch_uid="accounts.audit.doc"
    )
    sharing_changed.connect(_on_sharing_changed, dispatch_uid="accounts.audit.sharing")
    post_delete.connect(
        _on_knowledge_base_deleted,
        sender="documents.KnowledgeBase",
        dispatch_uid="accounts.audit.kb",
    )
