"""``follow(queue, task_id)``: the state, then each change of that task, to its end.

A small fake queue (an event bus and a table of tasks) makes each rule visible: the snapshot
comes first, other tasks' events are not seen, the stream ends with the task, a change made
between subscribing and reading the state is not lost, and the subscription is closed as soon
as the reader stops. A follow resumed after an event id replays what was missed instead of the
snapshot, or gives the snapshot when the buffer no longer covers it.
"""

from __future__ import annotations

import contextlib

import pytest
from queue_helpers import within

from ai_admin.errors import TaskNotFound
from ai_admin.queue.events import EventBus, EventKind, Subscription, SubscriptionLagged, TaskEvent
from ai_admin.queue.follow import follow
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType


class FakeQueue:
    def __init__(self) -> None:
        self.bus = EventBus(first_id=1)
        self.tasks: dict[str, DockerTask] = {}
        self.on_read: list[TaskEvent] = []  # published while the task is being read

    def subscribe(self, task_id: str | None = None) -> Subscription:
        return self.bus.subscribe(task_id)

    async def require_task(self, task_id: str) -> DockerTask:
        for event in self.on_read:
            self.bus.publish(event)
        if task_id not in self.tasks:
            raise TaskNotFound(f"Task {task_id} not found.")
        return self.tasks[task_id]

    def add(self, task_id: str, status: TaskStatus = TaskStatus.PENDING) -> None:
        self.tasks[task_id] = DockerTask(id=task_id, task_type=TaskType.PULL, status=status)

    @property
    def subscribers(self) -> int:
        return self.bus.subscribers


def event(task_id: str, status: TaskStatus) -> TaskEvent:
    return TaskEvent(EventKind.STATUS, task_id, "docker_pull", status, 0, status, None, 0.0)


def seen(events: list[TaskEvent]) -> list[tuple[str, str, str]]:
    return [(e.event.value, e.task_id, e.status.value) for e in events]


async def collect(queue: FakeQueue, task_id: str, after: int | None = None) -> list[TaskEvent]:
    async with contextlib.aclosing(follow(queue, task_id, after)) as events:
        return [e async for e in events]


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


async def test_the_snapshot_then_the_tasks_own_changes_up_to_its_end(queue: FakeQueue) -> None:
    queue.add("a")
    events = follow(queue, "a")
    first = await within(anext(events))
    for e in [
        event("b", TaskStatus.RUNNING),
        event("a", TaskStatus.RUNNING),
        event("a", TaskStatus.FAILED),
        event("a", TaskStatus.PENDING),  # a retry after the end: not this follow's business
    ]:
        queue.bus.publish(e)
    rest = [e async for e in events]
    assert seen([first, *rest]) == [
        ("snapshot", "a", "pending"),
        ("status", "a", "running"),
        ("status", "a", "failed"),
    ]
    assert queue.subscribers == 0


async def test_a_change_between_subscribing_and_reading_the_state_is_not_missed(
    queue: FakeQueue,
) -> None:
    queue.add("a")  # read as pending, though it finished meanwhile
    queue.on_read = [event("a", TaskStatus.COMPLETED)]
    assert seen(await within(collect(queue, "a"))) == [
        ("snapshot", "a", "pending"),
        ("status", "a", "completed"),
    ]


async def test_a_finished_task_gives_its_state_and_ends(queue: FakeQueue) -> None:
    queue.add("a", TaskStatus.COMPLETED)
    assert seen(await within(collect(queue, "a"))) == [("snapshot", "a", "completed")]
    assert queue.subscribers == 0


async def test_an_unknown_task_is_refused_before_anything_is_yielded(queue: FakeQueue) -> None:
    with pytest.raises(TaskNotFound):
        await collect(queue, "nope")
    assert queue.subscribers == 0


async def test_a_reader_that_stops_closes_the_subscription_at_once(queue: FakeQueue) -> None:
    queue.add("a")
    async with contextlib.aclosing(follow(queue, "a")) as events:
        async for _ in events:
            assert queue.subscribers == 1
            break
    assert queue.subscribers == 0


async def test_the_queue_ending_its_subscriptions_ends_the_follow(queue: FakeQueue) -> None:
    queue.add("a")
    events = follow(queue, "a")
    await within(anext(events))
    queue.bus.close()  # the agent stopping
    assert [e async for e in events] == []


async def test_a_reader_too_far_behind_is_told(
    queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ai_admin.queue.events._BUFFER", 2)
    queue.add("a")
    events = follow(queue, "a")
    await within(anext(events))
    for _ in range(3):
        queue.bus.publish(event("a", TaskStatus.RUNNING))
    with pytest.raises(SubscriptionLagged):
        async for _ in events:
            pass
    assert queue.subscribers == 0


# --- resuming after an event id -------------------------------------------------------------


async def test_a_resumed_follow_replays_what_was_missed_then_goes_on_live(
    queue: FakeQueue,
) -> None:
    queue.add("a", TaskStatus.RUNNING)
    queue.bus.publish(event("a", TaskStatus.RUNNING))  # 1: the client saw this one
    queue.bus.publish(event("b", TaskStatus.RUNNING))  # 2: another task's
    queue.bus.publish(event("a", TaskStatus.DOWNLOADING))  # 3: missed
    events = follow(queue, "a", after=1)
    first = await within(anext(events))
    queue.bus.publish(event("a", TaskStatus.COMPLETED))  # 4: live
    rest = [e async for e in events]
    assert [(e.id, e.status.value) for e in [first, *rest]] == [
        (3, "downloading"),
        (4, "completed"),
    ]
    assert queue.subscribers == 0


async def test_a_resumed_follow_of_a_task_that_ended_unseen_ends_with_its_end(
    queue: FakeQueue,
) -> None:
    queue.add("a", TaskStatus.COMPLETED)
    queue.bus.publish(event("a", TaskStatus.RUNNING))  # 1
    queue.bus.publish(event("a", TaskStatus.COMPLETED))  # 2
    assert [e.id for e in await within(collect(queue, "a", after=1))] == [2]
    # A client that had seen the end gets nothing more.
    assert await within(collect(queue, "a", after=2)) == []


async def test_an_end_published_while_the_state_is_read_is_not_missed_on_resume(
    queue: FakeQueue,
) -> None:
    queue.add("a", TaskStatus.COMPLETED)  # read as completed: it ended after subscribing
    queue.bus.publish(event("a", TaskStatus.RUNNING))  # 1: seen
    queue.on_read = [event("a", TaskStatus.COMPLETED)]  # 2: arrives in the subscription
    assert [(e.id, e.status.value) for e in await within(collect(queue, "a", after=1))] == [
        (2, "completed")
    ]


async def test_a_follow_resumed_beyond_the_buffer_starts_over_with_the_snapshot(
    queue: FakeQueue,
) -> None:
    queue.add("a", TaskStatus.COMPLETED)
    queue.bus.publish(event("a", TaskStatus.COMPLETED))  # 1
    got = await within(collect(queue, "a", after=123_456))  # an id of another run
    assert seen(got) == [("snapshot", "a", "completed")]
    assert got[0].id == 1  # the state as of event 1: a later resume starts after it
