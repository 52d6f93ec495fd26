"""``follow(queue, task_id)``: one task's state, then each of its changes until it finishes.

The one way a door follows a task: server-sent events for one task (``/api/events?task_id``),
MCP's wait with progress notifications, and the command line's live view. It subscribes
before it reads the task, so no change between the two is missed, and it needs nothing of
the queue but ``subscribe`` and ``require_task``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from typing import Protocol

from ai_admin.queue.events import EventKind, Subscription, TaskEvent
from ai_admin.queue.models import DockerTask

__all__ = ["Followable", "follow"]


class Followable(Protocol):
    def subscribe(self, task_id: str | None = None) -> Subscription: ...

    async def require_task(self, task_id: str) -> DockerTask: ...


async def follow(
    queue: Followable, task_id: str, after: int | None = None
) -> AsyncGenerator[TaskEvent, None]:
    """The task's current state (a ``snapshot`` event), then its events in order, ending with
    the one that finishes it (at once if it had already finished). The snapshot's id is that of
    the last event published before it was taken (of any task): a client resumes after it.

    ``after``: the id of the last event a reconnecting client saw. If the queue still holds
    every event of the task since then, those come first instead of the snapshot (nothing at
    all if the client had already seen the task end); if not, the snapshot comes as usual, and
    a door can tell the client it starts over by its being there.

    Raises ``TaskNotFound`` before yielding anything for an unknown id, and
    ``SubscriptionLagged`` if the reader fell too far behind; ends early when the queue ends
    its subscriptions (shutdown). Iterate it inside ``contextlib.aclosing`` so that the
    subscription is closed as soon as the reader stops, not when the generator is collected.
    """
    subscription = queue.subscribe(task_id)  # before reading the state: nothing is missed
    try:
        missed = subscription.backlog(after) if after is not None else None
        snapshot = TaskEvent.of(await queue.require_task(task_id), EventKind.SNAPSHOT)
        # The state as of the last event published before subscribing: resume after that id.
        snapshot = dataclasses.replace(snapshot, id=subscription.start_id)
        if missed is None:
            yield snapshot
            if snapshot.finishes:
                return
        elif snapshot.finishes and not any(e.finishes for e in missed) and not subscription.waiting:
            return  # its end was among what the client saw (else it waits in the subscription)
        for event in missed or ():
            yield event
            if event.finishes:
                return
        async for event in subscription:
            yield event
            if event.finishes:
                return
    finally:
        subscription.close()
