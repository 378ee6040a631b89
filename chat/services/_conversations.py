"""Conversations: create, change, delete."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils.translation import gettext as _

from chat import selectors
from chat.models import (
    Conversation,
)
from chat.services._runs import runs
from core.errors import InvalidInput
from documents.models import Document
from documents.selectors import knowledge_base_get_for_user
from providers.registry import PROVIDERS

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser


TITLE_CHARS = 80
PARAM_KEYS = ("temperature", "max_tokens", "top_k")


def title_from_question(*, question: str) -> str:
    """The first words of ``question``, at most ``TITLE_CHARS`` characters."""
    text = " ".join(question.split())
    if len(text) <= TITLE_CHARS:
        return text
    return text[:TITLE_CHARS].rsplit(" ", 1)[0] + "…"


def _user_id(user: User) -> int:
    if not user.is_authenticated:
        raise InvalidInput(_("Sign in first."))
    return int(user.pk)


def _check_provider(name: str) -> str:
    if name and name not in PROVIDERS:
        raise InvalidInput(
            _("There is no provider %(name)r; use one of %(known)s.")
            % {"name": name, "known": ", ".join(PROVIDERS)}
        )
    return name


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (params or {}).items() if k in PARAM_KEYS and v is not None}


def _set_sources(
    conversation: Conversation,
    user: User,
    knowledge_base_ids: Iterable[int],
    document_ids: Iterable[int],
) -> None:
    kbs = [
        knowledge_base_get_for_user(kb_id=kb_id, user=user)
        for kb_id in dict.fromkeys(knowledge_base_ids)
    ]
    wanted = set(document_ids)
    documents = list(Document.objects.filter(pk__in=wanted, knowledge_base__in=kbs))
    if len(documents) != len(wanted):
        raise InvalidInput(_("Choose documents only from the attached knowledge bases."))
    conversation.knowledge_bases.set(kbs)
    conversation.documents.set(documents)


@transaction.atomic
def conversation_create(
    *,
    owner: User,
    title: str = "",
    knowledge_base_ids: Iterable[int] = (),
    document_ids: Iterable[int] = (),
    provider: str = "",
    model: str = "",
    params: Mapping[str, Any] | None = None,
    system_prompt: str = "",
    template_id: int | None = None,
) -> Conversation:
    """A conversation of ``owner`` over knowledge bases they can read (none: a plain chat),
    optionally restricted to some of their documents. A template's parameter preset fills the
    parameters not given. Raises ``NotFound`` for a knowledge base or template the owner cannot
    see and ``InvalidInput`` for an unknown provider or a document outside the knowledge bases.
    """
    template = (
        selectors.prompt_template_get_for_user(template_id=template_id, user=owner)
        if template_id is not None
        else None
    )
    preset = _clean_params(template.params) if template else {}
    conversation = Conversation(
        owner_id=_user_id(owner),
        title=title.strip()[:200],
        provider=_check_provider(provider),
        model=model,
        params={**preset, **_clean_params(params)},
        system_prompt=system_prompt,
        template=template,
    )
    conversation.full_clean()
    conversation.save()
    _set_sources(conversation, owner, knowledge_base_ids, document_ids)
    return conversation


@transaction.atomic
def conversation_update(
    *,
    conversation: Conversation,
    user: User,
    title: str | None = None,
    knowledge_base_ids: Iterable[int] | None = None,
    document_ids: Iterable[int] | None = None,
    provider: str | None = None,
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
    system_prompt: str | None = None,
) -> Conversation:
    """Rename the conversation or change what the next answers use (``None``: unchanged).
    ``params`` are merged into the current ones. Raises like :func:`conversation_create`."""
    if title is not None:
        conversation.title = title.strip()[:200]
    if provider is not None:
        conversation.provider = _check_provider(provider)
    if model is not None:
        conversation.model = model
    if params is not None:
        conversation.params = {**conversation.params, **_clean_params(params)}
    if system_prompt is not None:
        conversation.system_prompt = system_prompt
    conversation.full_clean()
    conversation.save()
    if knowledge_base_ids is not None or document_ids is not None:
        kb_ids = (
            knowledge_base_ids
            if knowledge_base_ids is not None
            else conversation.knowledge_bases.values_list("pk", flat=True)
        )
        doc_ids = document_ids if document_ids is not None else ()
        _set_sources(conversation, user, list(kb_ids), list(doc_ids))
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete the conversation with its messages and citations; a running answer is stopped."""
    run = runs.get(conversation.pk)
    if run is not None:
        run.cancel()
    conversation.delete()
