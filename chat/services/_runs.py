"""The answers running in this process, and whoever listens to them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from chat.events import ChatEvent


@dataclass
class Run:
    """An answer being written in this process, and the queues of whoever listens to it."""

    conversation_id: int
    task: asyncio.Task[None] | None = None
    history: list[ChatEvent] = field(default_factory=list)
    listeners: list[tuple[asyncio.Queue[ChatEvent | None], asyncio.AbstractEventLoop]] = field(
        default_factory=list
    )

    def subscribe(self) -> asyncio.Queue[ChatEvent | None]:
        """A queue of the events from now on, after the ones published so far (so that a
        client that reconnects sees the whole answer); ``None`` ends it."""
        queue: asyncio.Queue[ChatEvent | None] = asyncio.Queue()
        for event in self.history:
            queue.put_nowait(event)
        self.listeners.append((queue, asyncio.get_running_loop()))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[ChatEvent | None]) -> None:
        self.listeners = [(q, loop) for q, loop in self.listeners if q is not queue]

    def publish(self, event: ChatEvent | None) -> None:
        """Called on the task's loop; listeners on another loop get it thread-safely."""
        if event is not None:
            self.history.append(event)
        for queue, loop in list(self.listeners):
            if loop is asyncio.get_running_loop():
                queue.put_nowait(event)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(queue.put_nowait, event)

    def cancel(self) -> bool:
        """Cancel the task, from any thread. False when there is none or it has finished."""
        task = self.task
        if task is None or task.done():
            return False
        task.get_loop().call_soon_threadsafe(task.cancel)
        return True


# Answers running in this process, by conversation id: one at a time per conversation.
runs: dict[int, Run] = {}
