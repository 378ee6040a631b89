"""Real HTTP servers on loopback that stand in for the LLM clouds in tests and demos."""

from __future__ import annotations

from providers.fakes._server import FakeServer, RecordedRequest, Script, running
from providers.fakes.gigachat import GigaChatFake, authorization_key
from providers.fakes.openai import OpenAIFake
from providers.fakes.yandex import YandexFake

__all__ = [
    "FakeServer",
    "GigaChatFake",
    "OpenAIFake",
    "RecordedRequest",
    "Script",
    "YandexFake",
    "authorization_key",
    "running",
]
