"""Live task changes for subscribers (server-sent events, CLI follow, dashboard).

Events are delivered in the order they happen, per task and overall. A subscriber that stops
reading is dropped once its buffer is full rather than holding memory or slowing the queue;
its iterator then ends with ``SubscriptionLagged``.
"""

from __future__ import annotations

import asyncio
from typing import Any

_BUFFER = 10_000


class SubscriptionLagged(Exception):
    """The subscriber fell too far behind and was dropped."""


class Subscription:
    """Registered when created, so no event after ``subscribe()`` returns is missed.

    Iterate it (``async for event in sub``) or ``await sub.next()``; close it when done
    (``async with`` does)."""

    def __init__(self, bus: EventBus, task_id: str | None) -> None:
        self.task_id = task_id
        # Unbounded so a closing marker always fits; the bound is enforced by the bus.
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._bus = bus
        self.lagged = False
        self.closed = False

    def _deliver(self, event: dict[str, Any] | None) -> bool:
        if event is not None and self._inbox.qsize() >= _BUFFER:
            self.lagged = True
            return False
        self._inbox.put_nowait(event)
        return True

    async def next(self) -> dict[str, Any] | None:
        """The next event, or None once the subscription has ended."""
        if self.closed and self._inbox.empty():
            return None
        event = await self._inbox.get()
        if event is None:
            self.closed = True
            if self.lagged:
                raise SubscriptionLagged(f"subscriber fell {_BUFFER} events behind")
        return event

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        event = await self.next()
        if event is None:
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        self._bus.unsubscribe(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self, task_id: str | None = None) -> Subscription:
        """Events from now on, for one task or all."""
        sub = Subscription(self, task_id)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.discard(sub)
            sub._deliver(None)

    def publish(self, event: dict[str, Any]) -> None:
        for sub in list(self._subscribers):
            if sub.task_id is not None and sub.task_id != event["task_id"]:
                continue
            if not sub._deliver(event):
                self.unsubscribe(sub)

    def close(self) -> None:
        """End every subscription (agent shutdown)."""
        for sub in list(self._subscribers):
            self.unsubscribe(sub)
