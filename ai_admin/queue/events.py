"""Live task changes for subscribers (server-sent events, CLI follow, dashboard).

Events are delivered in the order they happen, per task and overall. A subscriber that stops
reading is dropped once its buffer is full rather than holding memory or slowing the queue;
its iterator then ends with ``SubscriptionLagged``.

Every subscriber receives the same read-only ``TaskEvent``: a door that sends events on the wire
encodes each one once (``TaskEvent.encoded``), however many subscribers there are.

Things that are not tasks (a schedule created, fired, paused, resumed or deleted; next, batches)
change too: an ``ObjectEvent`` names its subject, the change and a few facts. It goes to
*watches* (``EventBus.watch``), which receive every event, tasks' and others', in one order;
a task subscription (``subscribe``) receives task events only, so what follows a task never
meets one.

Ids and replay. The bus numbers every event it publishes (``TaskEvent.id``), one more than the
last, and keeps the last ``REPLAY_EVENTS`` in memory, so a client that lost its connection can
ask for what came after the last id it saw (``Subscription.backlog``). The first id of a run is
the time the bus was made, in microseconds since the Unix epoch: a later run's ids are all
higher than an earlier run's (unless the agent published more than a million events a second),
so an id from before a restart is never mistaken for one of this run; it is older than the
replay buffer, and the client is told to start over from the current state. An id above the last
one published (a clock set back between runs) is treated the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from ai_admin.queue.models import DockerTask, ProgressDetail, TaskStatus

_BUFFER = 10_000
# The most recent published events kept for clients that reconnect: about 1.3 kB each with
# its encoded frame (a pull's progress event), so at most about 13 MB.
REPLAY_EVENTS = 10_000

Encoder = Callable[[Any], bytes]


class SubscriptionLagged(Exception):
    """The subscriber fell too far behind and was dropped."""


class EventKind(StrEnum):
    """What a ``TaskEvent`` reports."""

    SNAPSHOT = "snapshot"  # the state a stream starts from, not a change
    STATUS = "status"  # a state change, once it is durable
    PROGRESS = "progress"  # progress or current step (written to the store in batches)
    LOG = "log"  # one new line of the task's log, in ``line``


class _EncodedOnce:
    """``encoded(encoder)`` runs the encoder on the first call only and hands every later caller
    the same bytes: with a thousand open streams an event is still serialised once."""

    __slots__ = ("_encodings",)
    _encodings: dict[Encoder, bytes]

    def encoded(self, encoder: Encoder) -> bytes:
        """``encoder(self)``, computed once per event and encoder."""
        try:
            encodings = self._encodings
        except AttributeError:  # not encoded yet
            encodings = {}
            object.__setattr__(self, "_encodings", encodings)
        data = encodings.get(encoder)
        if data is None:
            data = encodings[encoder] = encoder(self)
        return data


# Events are slotted: the bus keeps the last REPLAY_EVENTS of them, each without a __dict__
# (measured: 250 bytes for a progress event instead of 290).


@dataclass(frozen=True, slots=True)
class TaskEvent(_EncodedOnce):
    """One change of one task, shared read-only by every subscriber."""

    event: EventKind
    task_id: str
    task_type: str
    status: TaskStatus
    progress: float
    current_step: str
    error_code: str | None
    at: float
    line: str | None = None
    progress_detail: ProgressDetail | None = None
    # Set by the bus when it publishes the event. A snapshot is not published: ``follow`` gives
    # it the id of the last event before it was taken (resume after that), others have None.
    id: int | None = None

    @classmethod
    def of(cls, task: DockerTask, kind: EventKind, line: str | None = None) -> TaskEvent:
        """The task's current state, as a ``kind`` event."""
        return cls(
            kind,
            task.id,
            task.task_type.value,
            task.status,
            task.progress,
            task.current_step,
            task.error_code,
            time.time(),
            line,
            task.progress_detail,
        )

    @property
    def name(self) -> str:
        """The event's name on the wire (a server-sent event's ``event:``)."""
        return self.event.value

    @property
    def finishes(self) -> bool:
        """The task has ended: nothing more will be published for it."""
        return self.status.is_finished

    def to_dict(self) -> dict[str, Any]:
        """The event as it goes on the wire (``line`` only on log events)."""
        detail = self.progress_detail
        data: dict[str, Any] = {
            "id": self.id,
            "event": self.event.value,
            "task_id": self.task_id,
            "task_type": self.task_type,
            "status": self.status.value,
            "progress": self.progress,
            "current_step": self.current_step,
            "error_code": self.error_code,
            "at": self.at,
            "progress_detail": detail.to_dict() if detail is not None else None,
        }
        if self.line is not None:
            data["line"] = self.line
        return data


class Subject(StrEnum):
    """What an ``ObjectEvent`` is about."""

    SCHEDULE = "schedule"
    BATCH = "batch"
    QUEUE = "queue"  # a named queue (``subject_id``: its name)


class Change(StrEnum):
    """What happened to the subject of an ``ObjectEvent``."""

    CREATED = "created"
    FIRED = "fired"  # a schedule submitted a task (``data.task_id``)
    PAUSED = "paused"
    RESUMED = "resumed"
    DELETED = "deleted"
    STARTED = "started"  # a batch runs (``data.state``)
    STOPPED = "stopped"
    MOVED = "moved"  # a batch has a new place in its queue's line
    FINISHED = "finished"  # a batch ended: completed, failed or cancelled (``data.state``)
    CONFIGURED = "configured"  # a queue's own limits changed


@dataclass(frozen=True, slots=True)
class ObjectEvent(_EncodedOnce):
    """One change of something that is not a task (a schedule, a batch, a queue), shared
    read-only by every watch. ``event`` is its name on the wire, ``<subject>_<change>``
    (``schedule_fired``); ``data`` holds a few facts about it (the task a firing submitted)."""

    event: str
    subject: Subject
    subject_id: str
    change: Change
    at: float
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # set by the bus when it publishes the event

    @classmethod
    def of(cls, subject: Subject, subject_id: str, change: Change, **data: Any) -> ObjectEvent:
        return cls(
            f"{subject.value}_{change.value}", subject, subject_id, change, time.time(), data
        )

    @property
    def name(self) -> str:
        return self.event

    @property
    def task_id(self) -> None:
        """No task's: a task subscription never receives it."""
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event": self.event,
            "subject": self.subject.value,
            "subject_id": self.subject_id,
            "change": self.change.value,
            "at": self.at,
            "data": dict(self.data),
        }


Event = TaskEvent | ObjectEvent
E = TypeVar("E", bound=Event)
Published = TypeVar("Published", TaskEvent, ObjectEvent)


class _Inbox(Generic[E]):
    """What a subscriber reads: delivered events in order, bounded by the bus."""

    def __init__(self, bus: EventBus, task_id: str | None) -> None:
        self.task_id: str | None = task_id
        # Unbounded so a closing marker always fits; the bound is enforced by the bus.
        self._inbox: asyncio.Queue[E | None] = asyncio.Queue()
        self._bus: EventBus = bus
        self.start_id = bus.last_id  # events after this one are delivered to the subscription
        self.lagged = False
        self.closed = False
        self.delivered = 0  # events put in the inbox so far: the n-th one taken out is the n-th

    def _deliver(self, event: E | None) -> bool:
        if event is not None:
            if self._inbox.qsize() >= _BUFFER:
                self.lagged = True
                return False
            self.delivered += 1
        self._inbox.put_nowait(event)
        return True

    async def next(self) -> E | None:
        """The next event, or None once the subscription has ended."""
        if self.closed and self._inbox.empty():
            return None
        return self._received(await self._inbox.get())

    def ready(self, most: int) -> list[E | None]:
        """Up to ``most`` events already waiting, without waiting (a writer batches them).

        Ends with None if the subscription ended there; raises as ``next`` does."""
        found: list[E | None] = []
        while len(found) < most and not self._inbox.empty() and not self.closed:
            found.append(self._received(self._inbox.get_nowait()))
        return found

    @property
    def waiting(self) -> int:
        """Events delivered and not yet taken."""
        return self._inbox.qsize()

    @property
    def latest_id(self) -> int:
        """The id of the last event published so far (to any subscriber)."""
        return self._bus.last_id

    def _received(self, event: E | None) -> E | None:
        if event is None:
            self.closed = True
            if self.lagged:
                raise SubscriptionLagged(f"subscriber fell {_BUFFER} events behind")
        return event

    def __aiter__(self) -> _Inbox[E]:
        return self

    async def __anext__(self) -> E:
        event = await self.next()
        if event is None:
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        self._bus.unsubscribe(self)

    async def __aenter__(self) -> _Inbox[E]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Subscription(_Inbox[TaskEvent]):
    """Registered when created, so no event after ``subscribe()`` returns is missed.

    Iterate it (``async for event in sub``) or ``await sub.next()``; close it when done
    (``async with`` does). It receives task events: one task's, or with no ``task_id`` all."""

    def backlog(self, after: int, until: int | None = None) -> list[TaskEvent] | None:
        """The task events published after id ``after`` up to ``until`` (by default, until
        this subscription began), of its task if it has one: what a client that saw ``after``
        missed, oldest first.

        None if the bus no longer holds them all (``after`` is older than the replay buffer,
        from another run, or an id never given out): the client must start over from the
        current state. Call it before awaiting anything, or events may leave the buffer.
        """
        return self._bus.replay(after, self.start_id if until is None else until, self.task_id)


class Watch(_Inbox[Event]):
    """Every event, of tasks and of other things (``ObjectEvent``), in the order published:
    what a stream of everything (``/api/events``) sends."""

    def __init__(self, bus: EventBus) -> None:
        super().__init__(bus, None)

    def backlog(self, after: int, until: int | None = None) -> list[Event] | None:
        """Every event published after ``after`` up to ``until`` (as ``Subscription.backlog``,
        of every kind)."""
        return self._bus.replay_all(after, self.start_id if until is None else until)


class EventBus:
    def __init__(self, first_id: int | None = None, replay_events: int = REPLAY_EVENTS) -> None:
        # By the task they follow (None: all tasks), so that an event costs what its own
        # subscribers cost, however many streams follow other tasks.
        self._subscribers: dict[str | None, set[Subscription]] = {}
        self._watches: set[Watch] = set()
        # The id before the first: see the module's docstring.
        self.last_id = time.time_ns() // 1_000 if first_id is None else first_id - 1
        self._recent: deque[Event] = deque(maxlen=replay_events)

    def replay_all(self, after: int, until: int) -> list[Event] | None:
        """The kept events with ``after < id <= until``; None unless every event after
        ``after`` is still kept and ``after`` was given out."""
        recent = self._recent
        oldest = recent[0].id if recent else self.last_id + 1
        assert oldest is not None
        if not oldest - 1 <= after <= self.last_id:
            return None
        first = after - oldest + 1  # ids are consecutive: the position of the first one missed
        last = until - oldest  # and of the last one wanted
        return list(itertools.islice(recent, first, max(first, last + 1)))

    def replay(self, after: int, until: int, task_id: str | None = None) -> list[TaskEvent] | None:
        """The kept task events with ``after < id <= until`` (of ``task_id`` only, if given);
        None unless every event after ``after`` is still kept and ``after`` was given out."""
        found = self.replay_all(after, until)
        if found is None:
            return None
        return [
            e
            for e in found
            if isinstance(e, TaskEvent) and (task_id is None or e.task_id == task_id)
        ]

    def subscribe(self, task_id: str | None = None) -> Subscription:
        """Task events from now on, for one task or all."""
        sub = Subscription(self, task_id)
        self._subscribers.setdefault(task_id, set()).add(sub)
        return sub

    def watch(self) -> Watch:
        """Every event from now on, tasks' and others'."""
        watch = Watch(self)
        self._watches.add(watch)
        return watch

    def unsubscribe(self, sub: _Inbox[Any]) -> None:
        if isinstance(sub, Watch):
            if sub in self._watches:
                self._watches.discard(sub)
                sub._deliver(None)
            return
        subs = self._subscribers.get(sub.task_id)
        if subs is not None and sub in subs:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.task_id]
            sub._deliver(None)

    @property
    def subscribers(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values()) + len(self._watches)

    def publish(self, event: Published) -> Published:
        """Number ``event``, keep it for replay and hand it to every interested subscriber (the
        same object to each); returns the numbered event."""
        self.last_id += 1
        if event.id is None:  # numbered in place: nobody holds it before it is published
            object.__setattr__(event, "id", self.last_id)
        else:  # published again: a copy, so the holders of the first keep their id
            event = dataclasses.replace(event, id=self.last_id)
        self._recent.append(event)
        interested: list[_Inbox[Any]] = [*self._watches]
        if isinstance(event, TaskEvent):
            interested += [
                *self._subscribers.get(None, ()),
                *self._subscribers.get(event.task_id, ()),
            ]
        for sub in interested:
            if not sub._deliver(event):
                self.unsubscribe(sub)
        return event

    def close(self) -> None:
        """End every subscription (agent shutdown)."""
        every: list[_Inbox[Any]] = [*self._watches]
        every += [s for subs in self._subscribers.values() for s in subs]
        for sub in every:
            self.unsubscribe(sub)
