"""Platform tasks."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import shared_task


@shared_task(name="raggen.worker_ping")
def worker_ping(nonce: str) -> dict[str, Any]:
    """Answers with the nonce and where it ran: proves a worker takes tasks from the broker."""
    return {"nonce": nonce, "hostname": socket.gethostname(), "pid": os.getpid()}


worker_ping_task = worker_ping
