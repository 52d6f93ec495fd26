"""Named queues: each with its own limits, its own pause and its waiting tasks in run order.

Priorities apply within a queue; queues with a free slot take turns (round robin), so slow bulk
work in one queue never starves another. The agent's ``max_concurrent`` bounds the running
tasks of all queues together, each queue's own ``max_concurrent`` its share of them.

The queue ``default`` always exists. Others come from the configuration file
(``[queues.NAME]``) or are created at run time; ``default``'s own limits may be set there too.
A limit a queue leaves out is the agent's setting of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from ai_admin.config import DEFAULT_QUEUE, QueueSettings, Settings
from ai_admin.errors import AiAdminError, ErrorCode
from ai_admin.queue.models import DockerTask, TaskPriority
from ai_admin.queue.pause import QueuePause
from ai_admin.queue.ready import ReadyQueue

Limit = Literal["max_concurrent", "max_queue_size", "default_timeout_s", "max_retries"]
LIMITS: tuple[Limit, ...] = ("max_concurrent", "max_queue_size", "default_timeout_s", "max_retries")


class QueueLimits(BaseModel):
    max_concurrent: int = Field(description="Its tasks running at once, at most.")
    max_queue_size: int = Field(description="Its tasks waiting at once, at most.")
    default_timeout_s: float = Field(description="The timeout of a task that sets none.")
    max_retries: int = Field(description="Automatic retries of a task that sets none.")


class QueueView(BaseModel):
    """A queue as clients see it: its limits (its own, else the agent's), pause and counts."""

    name: str
    limits: QueueLimits
    own_limits: list[str] = Field(
        description="The limits it sets itself; the others are the agent's."
    )
    paused: bool
    running: int = Field(description="Its tasks running now.")
    waiting: int = Field(
        description="Its unfinished tasks not running: pending (ready, in backoff or waiting "
        "for dependencies or their batch) and paused."
    )


def pause_flag(name: str) -> str:
    """The store flag that keeps a queue's pause (``default`` keeps its historical name)."""
    return "queue_paused" if name == DEFAULT_QUEUE else f"queue_paused:{name}"


@dataclass(eq=False)
class Lane:
    """One named queue, as the scheduler holds it."""

    name: str
    own: QueueSettings  # the limits it sets itself
    pause: QueuePause
    ready: ReadyQueue = field(default_factory=ReadyQueue)
    running: int = 0  # its tasks holding a slot
    busy: int = 0  # running, or finishing (the outcome still being written)

    def limit(self, name: Limit, settings: Settings) -> float:
        own = getattr(self.own, name)
        return own if own is not None else getattr(settings, name)  # type: ignore[no-any-return]

    def view(self, settings: Settings, live: int) -> QueueView:
        """``live``: its unfinished tasks."""
        return QueueView(
            name=self.name,
            limits=QueueLimits(**{name: self.limit(name, settings) for name in LIMITS}),
            own_limits=sorted(self.own.model_dump(exclude_none=True)),
            paused=self.pause.paused,
            running=self.running,
            waiting=live - self.busy,
        )

    def may_start(self, settings: Settings) -> bool:
        return (
            bool(self.ready)
            and not self.pause.paused
            and self.running < self.limit("max_concurrent", settings)
        )


def queue_not_found(name: str) -> AiAdminError:
    return AiAdminError(
        f"No queue is named {name!r}.",
        code=ErrorCode.QUEUE_NOT_FOUND,
        details={"queue": name},
    )


class Lanes:
    """Every queue by name, and their waiting tasks read as one (``position``, iteration)."""

    def __init__(self, settings: Settings, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._lanes: dict[str, Lane] = {}
        self._turn = 0  # the queue whose turn it is to start a task
        self._lane_of: dict[int, Lane] = {}  # a waiting task's seq -> its queue
        self.add_lane(DEFAULT_QUEUE, settings.queues.get(DEFAULT_QUEUE, QueueSettings()))
        for name, own in settings.queues.items():
            if name != DEFAULT_QUEUE:
                self.add_lane(name, own)

    # -- the queues ------------------------------------------------------------------------------

    def add_lane(self, name: str, own: QueueSettings) -> Lane:
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = Lane(
                name, own, QueuePause(self._on_change, pause_flag(name))
            )
        else:
            lane.own = own
        self._on_change()
        return lane

    def remove_lane(self, name: str) -> None:
        del self._lanes[name]
        self._turn = 0

    def lane(self, name: str) -> Lane:
        lane = self._lanes.get(name)
        if lane is None:
            raise queue_not_found(name)
        return lane

    def get(self, name: str) -> Lane | None:
        return self._lanes.get(name)

    @property
    def default(self) -> Lane:
        return self._lanes[DEFAULT_QUEUE]

    def lanes(self) -> list[Lane]:
        """``default`` first, then by name."""
        return sorted(self._lanes.values(), key=lambda q: (q.name != DEFAULT_QUEUE, q.name))

    # -- waiting tasks ---------------------------------------------------------------------------

    def add(self, task: DockerTask) -> None:
        lane = self._lanes[task.queue]
        lane.ready.add(task.priority, task.seq, task.id)
        self._lane_of[task.seq] = lane

    def remove(self, priority: TaskPriority, seq: int) -> bool:
        lane = self._lane_of.pop(seq, None)
        return lane is not None and lane.ready.remove(priority, seq)

    def __contains__(self, seq: int) -> bool:
        return seq in self._lane_of

    def __len__(self) -> int:
        return len(self._lane_of)

    def position(self, priority: TaskPriority, seq: int) -> int | None:
        """1 for the task its queue starts next; None if the task is not waiting."""
        lane = self._lane_of.get(seq)
        return lane.ready.position(priority, seq) if lane is not None else None

    def __iter__(self) -> Iterator[str]:
        """Waiting task ids, queue by queue (``default`` first), each in run order."""
        for lane in self.lanes():
            yield from lane.ready

    def may_start_any(self) -> bool:
        """Something waits in a queue that is not paused (a full one frees a slot in time)."""
        return any(lane.ready and not lane.pause.paused for lane in self._lanes.values())

    def next_to_start(self, settings: Settings) -> str | None:
        """The task that starts next, taken out: queues with a free slot take turns."""
        lanes = list(self._lanes.values())
        for i in range(len(lanes)):
            lane = lanes[(self._turn + i) % len(lanes)]
            if lane.may_start(settings):
                self._turn = (self._turn + i + 1) % len(lanes)
                entry = lane.ready.pop()
                assert entry is not None  # it may start: something waits in it
                del self._lane_of[entry[0]]
                return entry[1]
        return None
