"""A read-only admin page of the LLM providers: each one, whether it is configured, how to
configure it (from the environment only), its default model and the models it offers.

There is no model to register: :func:`providers_view` is mounted by ``raggen/urls.py`` under
``/admin/providers/`` behind ``admin.site.admin_view`` (staff only) and linked from the admin's
index page. It lives beside the provider settings it links to (``providers`` itself is plain
adapters, no pages).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from providers.base import ModelInfo
from providers.errors import ProviderError
from providers.registry import (
    ProviderStatus,
    default_provider_name,
    get_provider,
    provider_statuses,
)

MODELS_TIMEOUT = 5.0  # seconds to wait for one provider's model list


@dataclass(frozen=True)
class ProviderRow:
    status: ProviderStatus
    is_default: bool
    models: tuple[ModelInfo, ...]
    models_error: str


async def _models(status: ProviderStatus) -> tuple[tuple[ModelInfo, ...], str]:
    if not status.configured:
        return (), ""
    try:
        found = await asyncio.wait_for(
            get_provider(status.name).list_models(), timeout=MODELS_TIMEOUT
        )
    except ProviderError as exc:
        return (), exc.message
    except TimeoutError:
        return (), _("The provider did not list its models within %(s)d s.") % {"s": MODELS_TIMEOUT}
    return tuple(found), ""


async def _rows(with_models: bool) -> list[ProviderRow]:
    statuses = provider_statuses()
    default = default_provider_name()
    if with_models:
        listed = await asyncio.gather(*(_models(s) for s in statuses))
    else:
        listed = [((), "")] * len(statuses)
    return [
        ProviderRow(s, s.name == default, models, error)
        for s, (models, error) in zip(statuses, listed, strict=True)
    ]


def providers_view(request: HttpRequest) -> HttpResponse:
    """The providers page; ``?models=0`` skips asking the configured ones for their models."""
    rows = async_to_sync(_rows)(request.GET.get("models") != "0")
    context = {
        **admin.site.each_context(request),
        "title": _("LLM providers"),
        "rows": rows,
        "timeouts": {
            "connect": settings.LLM_CONNECT_TIMEOUT,
            "read": settings.LLM_READ_TIMEOUT,
            "retries": settings.LLM_MAX_RETRIES,
        },
    }
    return TemplateResponse(request, "admin/providers/providers.html", context)
