"""Run the loopback fakes of YandexGPT, GigaChat and an OpenAI-compatible server by hand, for
demos and manual checks, and print the environment that points RAGGEN at them."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from providers.fakes import FakeServer, GigaChatFake, OpenAIFake, Script, YandexFake


class Command(BaseCommand):
    help = "Serve fake YandexGPT, GigaChat and OpenAI-compatible APIs on 127.0.0.1."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--yandex-port", type=int, default=0, help="0: a free port")
        parser.add_argument("--gigachat-port", type=int, default=0, help="0: a free port")
        parser.add_argument("--openai-port", type=int, default=0, help="0: a free port")
        parser.add_argument(
            "--token-delay", type=float, default=0.05, help="seconds between streamed pieces"
        )
        parser.add_argument(
            "--first-token-delay", type=float, default=0.3, help="seconds before the first piece"
        )
        parser.add_argument(
            "--duration", type=float, default=0.0, help="stop after this many seconds (0: never)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        script = Script(
            token_delay=options["token_delay"], first_token_delay=options["first_token_delay"]
        )
        yandex = YandexFake(options["yandex_port"])
        gigachat = GigaChatFake(options["gigachat_port"])
        openai = OpenAIFake(options["openai_port"])
        fakes: list[FakeServer] = [yandex, gigachat, openai]
        for fake in fakes:
            fake.script = script
            fake.start()
        try:
            self._print_environment(yandex, gigachat, openai)
            stop = threading.Event()
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait(options["duration"] or None)
        finally:
            for fake in fakes:
                fake.stop()

    def _print_environment(
        self, yandex: YandexFake, gigachat: GigaChatFake, openai: OpenAIFake
    ) -> None:
        lines = [
            "# Fake LLM servers are running; Ctrl+C stops them. Use one block in the environment:",
            "DEFAULT_PROVIDER=yandexgpt",
            f"YANDEX_BASE_URL={yandex.url}",
            f"YANDEX_API_KEY={yandex.api_key}",
            f"YANDEX_FOLDER_ID={yandex.folder_id}",
            "",
            "DEFAULT_PROVIDER=gigachat",
            f"GIGACHAT_AUTH_URL={gigachat.auth_url}",
            f"GIGACHAT_BASE_URL={gigachat.base_url}",
            f"GIGACHAT_CREDENTIALS={gigachat.credentials}",
            "GIGACHAT_SCOPE=GIGACHAT_API_PERS",
            "",
            "DEFAULT_PROVIDER=openai",
            f"OPENAI_BASE_URL={openai.url}/v1",
            f"OPENAI_MODEL={openai.models[0]}",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
