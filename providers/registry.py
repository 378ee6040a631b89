"""The one place where settings meet adapters: provider names, their configuration state,
``get_provider(name)`` and ``get_encoder(name)``. Every adapter class, chat adapters and
embeddings encoders alike, is named once in :data:`ADAPTERS` as ``"module:Class"`` and
imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from providers._http import HttpConfig
from providers.base import ChatProvider
from providers.errors import ProviderNotConfigured, UnknownProvider

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    from providers.gigachat.encoder import GigaChatEncoder
    from providers.yandex.encoder import YandexEncoder


#: The settings an administrator may also set in the admin (stored encrypted by the app that
#: owns the model); a value set there wins over the environment's.
MANAGED_SETTINGS = (
    "YANDEX_API_KEY",
    "YANDEX_IAM_TOKEN",
    "YANDEX_FOLDER_ID",
    "GIGACHAT_CREDENTIALS",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
)
SECRET_SETTINGS = frozenset(
    {"YANDEX_API_KEY", "YANDEX_IAM_TOKEN", "GIGACHAT_CREDENTIALS", "OPENAI_API_KEY"}
)

#: Every adapter, by what it is (a chat adapter or an embeddings encoder) and its name, as
#: ``"module:Class"``. A new vendor is a package ``providers/<vendor>/`` plus rows here.
ADAPTERS: dict[tuple[Literal["chat", "encoder"], str], str] = {
    ("chat", "offline"): "providers.offline.chat:OfflineProvider",
    ("chat", "yandexgpt"): "providers.yandex.chat:YandexGPTProvider",
    ("chat", "gigachat"): "providers.gigachat.chat:GigaChatProvider",
    ("chat", "openai"): "providers.openai.chat:OpenAICompatProvider",
    ("encoder", "gigachat"): "providers.gigachat.encoder:GigaChatEncoder",
    ("encoder", "yandex"): "providers.yandex.encoder:YandexEncoder",
}

_overrides: Callable[[], Mapping[str, str]] = dict


def set_overrides_source(source: Callable[[], Mapping[str, str]]) -> None:
    """Where values of :data:`MANAGED_SETTINGS` set in the admin come from (called once, by the
    app that stores them, when it is ready). This module imports no model itself."""
    global _overrides
    _overrides = source


def setting(name: str) -> Any:
    """A provider setting: the admin's value for a managed one when set, else the
    environment's (``settings``)."""
    if name in MANAGED_SETTINGS:
        value = _overrides().get(name)
        if value:
            return value
    return getattr(settings, name)


@dataclass(frozen=True)
class ProviderStatus:
    """What the UI lists: every provider, configured or not, and how to configure it."""

    name: str
    label: str
    configured: bool
    default_model: str
    how_to_configure: str


@dataclass(frozen=True)
class _Entry:
    label: StrOrPromise  # translated when listed (provider_statuses) or raised
    how_to_configure: StrOrPromise
    configured: Callable[[], bool]
    options: Callable[[], dict[str, Any]]
    default_model: Callable[[], str]


def _http() -> HttpConfig:
    return HttpConfig(
        connect_timeout=settings.LLM_CONNECT_TIMEOUT,
        read_timeout=settings.LLM_READ_TIMEOUT,
        max_retries=settings.LLM_MAX_RETRIES,
    )


def _yandex_options() -> dict[str, Any]:
    return {
        "base_url": settings.YANDEX_BASE_URL,
        "folder_id": setting("YANDEX_FOLDER_ID"),
        "api_key": setting("YANDEX_API_KEY"),
        "iam_token": setting("YANDEX_IAM_TOKEN"),
        "model": settings.YANDEX_MODEL,
        "branch": settings.YANDEX_MODEL_BRANCH,
        "temperature": settings.YANDEX_TEMPERATURE,
        "max_tokens": settings.YANDEX_MAX_TOKENS,
        "data_logging": settings.YANDEX_DATA_LOGGING,
        "http": _http(),
    }


def _gigachat_options() -> dict[str, Any]:
    return {
        "base_url": settings.GIGACHAT_BASE_URL,
        "auth_url": settings.GIGACHAT_AUTH_URL,
        "credentials": setting("GIGACHAT_CREDENTIALS"),
        "scope": settings.GIGACHAT_SCOPE,
        "model": settings.GIGACHAT_MODEL,
        "temperature": settings.GIGACHAT_TEMPERATURE,
        "max_tokens": settings.GIGACHAT_MAX_TOKENS,
        "ca_bundle": settings.GIGACHAT_CA_BUNDLE,
        "verify_ssl": settings.GIGACHAT_VERIFY_SSL,
        "http": _http(),
    }


def _openai_options() -> dict[str, Any]:
    return {
        "base_url": setting("OPENAI_BASE_URL"),
        "api_key": setting("OPENAI_API_KEY"),
        "model": settings.OPENAI_MODEL,
        "temperature": settings.OPENAI_TEMPERATURE,
        "max_tokens": settings.OPENAI_MAX_TOKENS,
        "http": _http(),
    }


PROVIDERS: dict[str, _Entry] = {
    "offline": _Entry(
        label=_("Offline (quotes the passages)"),
        how_to_configure=_("Always available; needs no key."),
        configured=lambda: True,
        options=dict,
        default_model=lambda: "offline-extractive",
    ),
    "yandexgpt": _Entry(
        label="YandexGPT",
        how_to_configure=_(
            "Set YANDEX_API_KEY (a service-account API key) or YANDEX_IAM_TOKEN, and "
            "YANDEX_FOLDER_ID; optionally YANDEX_MODEL (yandexgpt-lite or yandexgpt)."
        ),
        configured=lambda: bool(
            (setting("YANDEX_API_KEY") or setting("YANDEX_IAM_TOKEN"))
            and setting("YANDEX_FOLDER_ID")
        ),
        options=_yandex_options,
        default_model=lambda: str(settings.YANDEX_MODEL),
    ),
    "gigachat": _Entry(
        label="GigaChat",
        how_to_configure=_(
            "Set GIGACHAT_CREDENTIALS (the authorization key from the Sber developer cabinet) "
            "and GIGACHAT_SCOPE (GIGACHAT_API_PERS, GIGACHAT_API_B2B or GIGACHAT_API_CORP); "
            "GIGACHAT_CA_BUNDLE to the Russian Trusted Root CA file."
        ),
        configured=lambda: bool(setting("GIGACHAT_CREDENTIALS")),
        options=_gigachat_options,
        default_model=lambda: str(settings.GIGACHAT_MODEL),
    ),
    "openai": _Entry(
        label=_("OpenAI-compatible"),
        how_to_configure=_(
            "Set OPENAI_BASE_URL to the server's /v1 URL (Ollama: http://127.0.0.1:11434/v1), "
            "OPENAI_MODEL, and OPENAI_API_KEY if the server needs one."
        ),
        configured=lambda: bool(setting("OPENAI_BASE_URL")),
        options=_openai_options,
        default_model=lambda: str(settings.OPENAI_MODEL),
    ),
}

_instances: dict[tuple[str, tuple[tuple[str, Any], ...]], ChatProvider] = {}


def _entry(name: str) -> _Entry:
    try:
        return PROVIDERS[name]
    except KeyError:
        known = ", ".join(PROVIDERS)
        raise UnknownProvider(
            gettext("There is no provider %(name)r; use one of %(known)s.")
            % {"name": name, "known": known}
        ) from None


def _adapter_class(kind: Literal["chat", "encoder"], name: str) -> Callable[..., Any]:
    """The class :data:`ADAPTERS` names for ``(kind, name)``, its module imported now."""
    module_name, _, class_name = ADAPTERS[kind, name].partition(":")
    cls: Callable[..., Any] = getattr(importlib.import_module(module_name), class_name)
    return cls


def provider_statuses() -> list[ProviderStatus]:
    """Every provider, in a stable order, with whether it is configured."""
    return [
        ProviderStatus(
            name=name,
            label=str(entry.label),
            configured=entry.configured(),
            default_model=entry.default_model(),
            how_to_configure=str(entry.how_to_configure),
        )
        for name, entry in PROVIDERS.items()
    ]


def default_provider_name() -> str:
    return str(settings.DEFAULT_PROVIDER)


def get_provider(name: str | None = None) -> ChatProvider:
    """The provider called ``name`` (default: ``DEFAULT_PROVIDER``), built from settings.

    Instances are reused while their settings stay the same, so GigaChat's token cache lives
    across chats. Raises ``UnknownProvider`` for a name that does not exist and
    ``ProviderNotConfigured``, saying how to configure it, for one without credentials.
    """
    name = name or default_provider_name()
    entry = _entry(name)
    if not entry.configured():
        raise ProviderNotConfigured(
            gettext("%(label)s is not configured. %(how)s")
            % {"label": entry.label, "how": entry.how_to_configure},
            provider=name,
        )
    options = entry.options()
    key = (name, tuple(sorted(options.items())))
    provider = _instances.get(key)
    if provider is None:
        provider = _instances[key] = _adapter_class("chat", name)(**options)
    return provider


ENCODER_NAMES = tuple(name for kind, name in ADAPTERS if kind == "encoder")
_encoders: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}


def get_encoder(name: str) -> GigaChatEncoder | YandexEncoder:
    """The provider embeddings encoder called ``name`` (``gigachat``: ``Embeddings``, 1024-d;
    ``yandex``: ``text-search-doc``, 256-d, whose ``for_queries()`` uses
    ``text-search-query``). Its ``name`` is what a knowledge base records. Raises
    ``UnknownProvider`` or ``ProviderNotConfigured`` like :func:`get_provider`."""
    if name not in ENCODER_NAMES:
        known = ", ".join(ENCODER_NAMES)
        raise UnknownProvider(
            gettext("There is no embeddings provider %(name)r; use one of %(known)s.")
            % {"name": name, "known": known}
        )
    entry = PROVIDERS["yandexgpt" if name == "yandex" else "gigachat"]
    if not entry.configured():
        raise ProviderNotConfigured(
            gettext("%(label)s embeddings are not configured. %(how)s")
            % {"label": entry.label, "how": entry.how_to_configure},
            provider=name,
        )
    options = entry.options()
    if name == "yandex":
        keep = ("base_url", "folder_id", "api_key", "iam_token", "http")
        options = {k: options[k] for k in keep}
    else:
        drop = ("model", "temperature", "max_tokens")
        options = {k: v for k, v in options.items() if k not in drop}
        options["model"] = settings.GIGACHAT_EMBEDDINGS_MODEL
    key = (name, tuple(sorted(options.items())))
    if key not in _encoders:
        _encoders[key] = _adapter_class("encoder", name)(**options)
    encoder: GigaChatEncoder | YandexEncoder = _encoders[key]
    return encoder
