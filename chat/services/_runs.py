"""The answers running in this process, and whoever listens to them."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from chat.events import ChatEvent


@dataclass
class Run:
    """An answer being written in this process, and the queues of whoever listens to it."""

    conversation_id: int
    task: asyncio.Task[None] | None = None
    queues: list[asyncio.Queue[ChatEvent | None]] = field(default_factory=list)

    def subscribe(self) -> asyncio.Queue[ChatEvent | None]:
        queue: asyncio.Queue[ChatEvent | None] = asyncio.Queue()
        self.queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[ChatEvent | None]) -> None:
        with contextlib.suppress(ValueError):
            self.queues.remove(queue)

    def publish(self, event: ChatEvent | None) -> None:
        for queue in self.queues:
            queue.put_nowait(event)

    def cancel(self) -> bool:
        """Cancel the task, from any thread. False when there is none or it has finished."""
        task = self.task
        if task is None or task.done():
            return False
        task.get_loop().call_soon_threadsafe(task.cancel)
        return True


# Answers running in this process, by conversation id: one at a time per conversation.
runs: dict[int, Run] = {}
