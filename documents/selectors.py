"""Read-side queries for knowledge bases and documents, with the access check built in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from documents.models import KnowledgeBase
from raggen.errors import NotFound

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


def knowledge_base_get_for_user(
    kb_id: int, user: AbstractBaseUser | AnonymousUser
) -> KnowledgeBase:
    """The knowledge base ``kb_id`` if ``user`` may read it.

    Raises :class:`NotFound` otherwise, also when it exists but belongs to someone else, so that
    ids do not leak.
    """
    if not user.is_authenticated:
        raise NotFound("Knowledge base not found.")
    kb = KnowledgeBase.objects.filter(pk=kb_id, owner_id=user.pk).first()
    if kb is None:
        raise NotFound("Knowledge base not found.")
    return kb
