"""Prompt templates: personal ones here, global ones in the admin."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from chat.models import (
    PromptTemplate,
)
from chat.services._conversations import _clean_params, _user_id
from core.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser


def template_placeholders(*, body: str) -> list[str]:
    """The ``{names}`` in ``body``, in order, each once. Raises ``InvalidInput`` for a malformed
    body (a lone brace, a positional ``{}``)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(body) if f is not None]
    except ValueError as exc:
        raise InvalidInput(
            _("The template is malformed: %(error)s. Write {{ for a brace.") % {"error": exc}
        ) from exc
    if any(not f.isidentifier() for f in fields):
        raise InvalidInput(_("Placeholders are names in braces, like {topic}."))
    return list(dict.fromkeys(fields))


def prompt_template_create(
    *, owner: User, name: str, body: str, params: Mapping[str, Any] | None = None
) -> PromptTemplate:
    """A personal template. Raises ``InvalidInput`` for a malformed body and ``Conflict`` when
    the owner already has a template of that name."""
    template_placeholders(body=body)
    if PromptTemplate.objects.filter(owner_id=_user_id(owner), name=name).exists():
        raise Conflict(_("You already have a template called %(name)r.") % {"name": name})
    template = PromptTemplate(
        owner_id=_user_id(owner), name=name, body=body, params=_clean_params(params)
    )
    template.full_clean()
    template.save()
    return template


def prompt_template_update(
    *,
    template: PromptTemplate,
    name: str | None = None,
    body: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> PromptTemplate:
    """Change a personal template (``None``: unchanged). Raises like the creation."""
    if body is not None:
        template_placeholders(body=body)
        template.body = body
    if name is not None and name != template.name:
        if PromptTemplate.objects.filter(owner_id=template.owner_id, name=name).exists():
            raise Conflict(_("You already have a template called %(name)r.") % {"name": name})
        template.name = name
    if params is not None:
        template.params = _clean_params(params)
    template.full_clean()
    template.save()
    return template


def prompt_template_render(*, template: PromptTemplate, values: Mapping[str, str]) -> str:
    """The template's body with its placeholders filled. Raises ``InvalidInput`` naming the
    placeholders without a value."""
    missing = [name for name in template_placeholders(body=template.body) if name not in values]
    if missing:
        raise InvalidInput(
            _("Fill in %(names)s.") % {"names": ", ".join(missing)}, {"missing": missing}
        )
    return template.body.format_map(dict(values))
