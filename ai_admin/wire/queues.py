"""What the named-queue commands answer: a queue as the engine shows it (``QueueView``, defined
by the code that builds it) and the shapes around it."""

from __future__ import annotations

from pydantic import Field

from ai_admin.queue.lanes import QueueView
from ai_admin.wire.envelope import Wire

__all__ = ["QueueDeleted", "QueueList", "QueueView"]


class QueueList(Wire):
    queues: list[QueueView] = Field(description="default first, then by name.")


class QueueDeleted(Wire):
    queue: str
    deleted: bool
