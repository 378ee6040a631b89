"""Sends a ping task through the configured background runner and waits for the answer."""

from __future__ import annotations

import secrets
from concurrent.futures import Future
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.background import enqueue
from raggen.tasks import worker_ping_task


class Command(BaseCommand):
    help = "Check that background tasks run: enqueue a ping and wait for a worker's answer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")

    def handle(self, *args: Any, **options: Any) -> None:
        nonce = secrets.token_hex(8)
        handle = enqueue(worker_ping_task, nonce)
        if handle is None:
            raise CommandError("BACKGROUND_TASKS=eager runs tasks inline: nothing to check")
        try:
            answer = (
                handle.result(timeout=options["timeout"])
                if isinstance(handle, Future)
                else handle.get(timeout=options["timeout"])
            )
        except Exception as exc:
            raise CommandError(
                f"no answer from a worker within {options['timeout']} s "
                f"({exc.__class__.__name__}); is `make worker` running with the same REDIS_URL?"
            ) from None
        if answer.get("nonce") != nonce:
            raise CommandError(f"a worker answered with the wrong nonce: {answer!r}")
        self.stdout.write(
            f"{settings.BACKGROUND_TASKS} worker answered: host {answer['hostname']} "
            f"pid {answer['pid']}"
        )
