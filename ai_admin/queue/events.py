"""Live task changes for subscribers (server-sent events, CLI follow, dashboard).

Events are delivered in the order they happen, per task and overall. A subscriber that stops
reading is dropped once its buffer is full rather than holding memory or slowing the queue;
its iterator then ends with ``SubscriptionLagged``.

Every subscriber receives the same read-only ``Event``: a door that sends events on the wire
encodes each one once (``Event.encoded``), however many subscribers there are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any

_BUFFER = 10_000

Encoder = Callable[["Event"], bytes]


class SubscriptionLagged(Exception):
    """The subscriber fell too far behind and was dropped."""


class Event(Mapping[str, Any]):
    """One published change, shared read-only by every subscriber.

    ``encoded(encoder)`` runs the encoder on the first call only and hands every later caller
    the same bytes: with a thousand open streams an event is still serialised once.
    """

    __slots__ = ("_data", "_encoded")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)
        self._encoded: dict[Encoder, bytes] = {}

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Event:
        return event if isinstance(event, Event) else cls(event)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Event({self._data!r})"

    def encoded(self, encoder: Encoder) -> bytes:
        """``encoder(self)``, computed once per event and encoder."""
        data = self._encoded.get(encoder)
        if data is None:
            data = self._encoded[encoder] = encoder(self)
        return data


class Subscription:
    """Registered when created, so no event after ``subscribe()`` returns is missed.

    Iterate it (``async for event in sub``) or ``await sub.next()``; close it when done
    (``async with`` does)."""

    def __init__(self, bus: EventBus, task_id: str | None) -> None:
        self.task_id = task_id
        # Unbounded so a closing marker always fits; the bound is enforced by the bus.
        self._inbox: asyncio.Queue[Event | None] = asyncio.Queue()
        self._bus = bus
        self.lagged = False
        self.closed = False
        self.delivered = 0  # events put in the inbox so far: the n-th one taken out is the n-th

    def _deliver(self, event: Event | None) -> bool:
        if event is not None:
            if self._inbox.qsize() >= _BUFFER:
                self.lagged = True
                return False
            self.delivered += 1
        self._inbox.put_nowait(event)
        return True

    async def next(self) -> Event | None:
        """The next event, or None once the subscription has ended."""
        if self.closed and self._inbox.empty():
            return None
        return self._received(await self._inbox.get())

    def ready(self, most: int) -> list[Event | None]:
        """Up to ``most`` events already waiting, without waiting (a writer batches them).

        Ends with None if the subscription ended there; raises as ``next`` does."""
        found: list[Event | None] = []
        while len(found) < most and not self._inbox.empty() and not self.closed:
            found.append(self._received(self._inbox.get_nowait()))
        return found

    def _received(self, event: Event | None) -> Event | None:
        if event is None:
            self.closed = True
            if self.lagged:
                raise SubscriptionLagged(f"subscriber fell {_BUFFER} events behind")
        return event

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
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

    def publish(self, event: Mapping[str, Any]) -> None:
        """Hand ``event`` to every interested subscriber, as one shared ``Event``."""
        shared = Event.of(event)
        task_id = shared["task_id"]
        for sub in list(self._subscribers):
            if sub.task_id is not None and sub.task_id != task_id:
                continue
            if not sub._deliver(shared):
                self.unsubscribe(sub)

    def close(self) -> None:
        """End every subscription (agent shutdown)."""
        for sub in list(self._subscribers):
            self.unsubscribe(sub)
