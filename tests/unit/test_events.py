"""The event bus behind subscriptions: ordered delivery, filters, lagging readers, shutdown;
ids and the replay buffer a reconnecting client resumes from."""

from __future__ import annotations

import dataclasses

import pytest
from queue_helpers import within

from ai_admin.queue import events as events_module
from ai_admin.queue.events import (
    Change,
    EventBus,
    EventKind,
    ObjectEvent,
    Subject,
    SubscriptionLagged,
    TaskEvent,
)
from ai_admin.queue.models import DockerTask, ProgressDetail, TaskStatus, TaskType


def event(task_id: str, n: int) -> TaskEvent:
    """The n-th event of a test, told apart by its progress."""
    return TaskEvent(
        EventKind.PROGRESS, task_id, "docker_pull", TaskStatus.PULLING, n, "step", None, 0.0
    )


async def test_a_subscription_receives_events_published_after_it_in_order() -> None:
    bus = EventBus()
    bus.publish(event("a", 0))  # before subscribing: not seen
    sub = bus.subscribe()
    for n in range(1, 6):
        bus.publish(event("a" if n % 2 else "b", n))
    assert [(await within(sub.next())).progress for _ in range(5)] == [1, 2, 3, 4, 5]


async def test_a_task_subscription_sees_only_that_task() -> None:
    bus = EventBus()
    sub_a = bus.subscribe("a")
    for n in range(4):
        bus.publish(event("b" if n % 2 else "a", n))
    sub_a.close()
    assert [e.progress async for e in sub_a] == [0, 2]


async def test_closing_the_bus_ends_every_subscription() -> None:
    bus = EventBus()
    subs = [bus.subscribe(), bus.subscribe("x")]
    bus.publish(event("x", 1))
    bus.close()
    for sub in subs:
        assert [e.progress async for e in sub] == [1]
        assert await sub.next() is None
    bus.publish(event("x", 2))  # nobody is listening; no error


async def test_a_closed_subscription_gets_nothing_more() -> None:
    bus = EventBus()
    async with bus.subscribe() as sub:
        bus.publish(event("a", 1))
    bus.publish(event("a", 2))
    assert [e.progress async for e in sub] == [1]


async def test_a_reader_that_falls_behind_is_dropped_with_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events_module, "_BUFFER", 3)
    bus = EventBus()
    slow = bus.subscribe()
    fast = bus.subscribe()
    for n in range(5):
        bus.publish(event("a", n))
        assert (await within(fast.next())).progress == n
    assert slow.lagged
    assert [(await within(slow.next())).progress for _ in range(3)] == [0, 1, 2]
    with pytest.raises(SubscriptionLagged):
        await within(slow.next())
    bus.publish(event("a", 5))
    assert (await within(fast.next())).progress == 5  # the others carry on


async def test_every_subscriber_gets_one_shared_event_encoded_once() -> None:
    bus = EventBus()
    subs = [bus.subscribe() for _ in range(100)] + [bus.subscribe("a")]
    calls: list[TaskEvent] = []

    def encode(e: TaskEvent) -> bytes:
        calls.append(e)
        return f"{e.task_id}:{e.progress:g}".encode()

    bus.publish(event("a", 1))
    received = [await within(sub.next()) for sub in subs]
    assert all(r is received[0] for r in received)
    assert {r.encoded(encode) for r in received if r is not None} == {b"a:1"}
    assert len(calls) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        received[0].progress = 2  # type: ignore[misc]


async def test_ready_hands_over_what_is_waiting_without_waiting() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    assert sub.ready(10) == []
    for n in range(5):
        bus.publish(event("a", n))
    assert [e.progress for e in sub.ready(3) if e is not None] == [0, 1, 2]
    sub.close()
    rest = sub.ready(10)
    assert [e.progress if e is not None else None for e in rest] == [3, 4, None]
    assert await sub.next() is None


# --- ids and replay -----------------------------------------------------------------------


async def test_published_events_are_numbered_one_more_each_and_delivered_numbered() -> None:
    bus = EventBus(first_id=7)
    sub = bus.subscribe()
    published = [bus.publish(event("a", n)) for n in range(3)]
    assert [e.id for e in published] == [7, 8, 9]
    assert [(await within(sub.next())) for _ in range(3)] == published
    assert bus.last_id == 9


def test_a_later_runs_ids_are_all_higher_than_an_earlier_runs() -> None:
    """Ids start from the time the bus was made (microseconds): a client holding an id from
    before a restart is never given a wrong replay."""
    earlier = EventBus()
    for n in range(1000):
        earlier.publish(event("a", n))
    later = EventBus()
    assert later.publish(event("a", 0)).id > earlier.last_id  # type: ignore[operator]


def test_what_a_client_missed_is_replayed_from_the_buffer() -> None:
    bus = EventBus(first_id=1)
    for n in range(1, 6):
        bus.publish(event("a" if n % 2 else "b", n))  # ids 1..5: a, b, a, b, a
    sub = bus.subscribe()
    assert [e.id for e in sub.backlog(2) or []] == [3, 4, 5]
    assert [e.id for e in sub.backlog(0) or []] == [1, 2, 3, 4, 5]
    assert sub.backlog(5) == []  # saw everything
    assert [e.id for e in bus.subscribe("a").backlog(1) or []] == [3, 5]  # its task only
    bus.publish(event("a", 6))
    assert [e.id for e in sub.backlog(2) or []] == [3, 4, 5]  # up to where it began
    assert [e.id for e in sub.backlog(2, until=bus.last_id) or []] == [3, 4, 5, 6]


def test_an_id_the_buffer_no_longer_covers_gets_no_replay() -> None:
    bus = EventBus(first_id=1, replay_events=3)
    for n in range(1, 7):
        bus.publish(event("a", n))  # keeps 4, 5, 6
    sub = bus.subscribe()
    assert [e.id for e in sub.backlog(3) or []] == [4, 5, 6]
    assert sub.backlog(2) is None  # 3 is gone: replaying from 4 would lose it
    assert sub.backlog(7) is None  # never given out (a clock set back between runs)
    assert sub.backlog(-1) is None


def test_the_replay_buffer_holds_the_documented_number_of_events() -> None:
    bus = EventBus(first_id=1)
    for n in range(events_module.REPLAY_EVENTS + 10):
        bus.publish(event("a", n))
    sub = bus.subscribe()
    assert sub.backlog(10) is not None
    assert len(sub.backlog(10) or []) == events_module.REPLAY_EVENTS
    assert sub.backlog(9) is None


def test_an_event_goes_on_the_wire_with_its_id_and_numbers() -> None:
    task = DockerTask(task_type=TaskType.PULL)
    task.progress_detail = ProgressDetail(phase="downloading", bytes_done=1, bytes_total=2)
    bus = EventBus(first_id=41)
    data = bus.publish(TaskEvent.of(task, EventKind.PROGRESS)).to_dict()
    assert data["id"] == 41
    assert data["progress_detail"]["bytes_done"] == 1
    assert data["progress_detail"]["rate_bps"] is None


def test_an_event_published_twice_is_numbered_twice_without_renumbering_the_first() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    shared = event("a", 1)
    first = bus.publish(shared)

    def by_id(e: TaskEvent) -> bytes:
        return str(e.id).encode()

    assert first.encoded(by_id) == str(first.id).encode()
    again = bus.publish(shared)
    assert first.id is not None
    assert again.id == first.id + 1
    assert again.encoded(by_id) == str(again.id).encode()  # not the first one's frame
    assert [e.id for e in sub.ready(10) if e is not None] == [first.id, again.id]


# --- changes of things that are not tasks ----------------------------------------------------


def change(n: int) -> ObjectEvent:
    return ObjectEvent.of(Subject.SCHEDULE, f"sch-{n}", Change.FIRED, task_id=f"t{n}")


async def test_a_watch_gets_every_event_and_a_task_subscription_only_task_events() -> None:
    bus = EventBus(first_id=1)
    watch, tasks, one = bus.watch(), bus.subscribe(), bus.subscribe("a")
    published = [bus.publish(event("a", 0)), bus.publish(change(1)), bus.publish(event("a", 2))]
    assert [e.id for e in published] == [1, 2, 3]
    assert published[1].event == "schedule_fired"
    for sub in (watch, tasks, one):
        sub.close()
    assert [e async for e in watch] == published
    assert [e async for e in tasks] == [published[0], published[2]]
    assert [e async for e in one] == [published[0], published[2]]
    assert bus.subscribers == 0


def test_replay_keeps_the_kinds_apart() -> None:
    bus = EventBus(first_id=1)
    published = [bus.publish(change(0)), bus.publish(event("a", 1)), bus.publish(change(2))]
    assert bus.replay_all(0, 3) == published
    assert bus.replay(0, 3) == [published[1]]
    assert bus.watch().backlog(1) == published[1:]


async def test_a_lagging_watch_is_dropped_like_a_subscription() -> None:
    bus = EventBus()
    watch = bus.watch()
    for n in range(events_module._BUFFER + 1):
        bus.publish(change(n))
    assert bus.subscribers == 0  # dropped at once
    assert len(watch.ready(events_module._BUFFER)) == events_module._BUFFER
    with pytest.raises(SubscriptionLagged):
        await within(watch.next())
