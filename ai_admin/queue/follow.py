"""``follow(queue, task_id)``: one task's state, then each of its changes until it finishes.

The one way a door follows a task: server-sent events for one task (``/api/events?task_id``),
MCP's wait with progress notifications, and the command line's live view. It subscribes
before it reads the task, so no change between the two is missed, and it needs nothing of
the queue but ``subscribe`` and ``require_task``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from ai_admin.queue.events import EventKind, Subscription, TaskEvent
from ai_admin.queue.models import DockerTask

__all__ = ["Followable", "follow"]


class Followable(Protocol):
    def subscribe(self, task_id: str | None = None) -> Subscription: ...

    async def require_task(self, task_id: str) -> DockerTask: ...


async def follow(queue: Followable, task_id: str) -> AsyncGenerator[TaskEvent, None]:
    """The task's current state (a ``snapshot`` event), then its events in order, ending with
    the one that finishes it (at once if it had already finished).

    Raises ``TaskNotFound`` before yielding anything for an unknown id, and
    ``SubscriptionLagged`` if the reader fell too far behind; ends early when the queue ends
    its subscriptions (shutdown). Iterate it inside ``contextlib.aclosing`` so that the
    subscription is closed as soon as the reader stops, not when the generator is collected.
    """
    subscription = queue.subscribe(task_id)  # before reading the state: nothing is missed
    try:
        snapshot = TaskEvent.of(await queue.require_task(task_id), EventKind.SNAPSHOT)
        yield snapshot
        if snapshot.finishes:
            return
        async for event in subscription:
            yield event
            if event.finishes:
                return
    finally:
        subscription.close()
