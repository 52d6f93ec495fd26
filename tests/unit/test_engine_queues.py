"""Named queues: each its own limits and pause; all within the agent's max_concurrent."""

from __future__ import annotations

import asyncio

import pytest
from queue_helpers import EngineFactory, Work, make_task, within

from ai_admin.config import QueueSettings
from ai_admin.errors import AiAdminError, ErrorCode, InvalidParams, QueueFull
from ai_admin.queue.events import ObjectEvent
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskPriority, TaskStatus

QUEUES = {"bulk": {"max_concurrent": 1}, "fast": {"max_concurrent": 3}}


class Tracker(Work):
    """Work that records, at every start, how many tasks of each queue run at that moment."""

    def __init__(self, queue_of: dict[str, str]) -> None:
        super().__init__(block=False, hold_s=0.01)
        self.queue_of = queue_of
        self.by_queue: dict[str, int] = {}
        self.peaks: dict[str, int] = {}
        self.total_peak = 0

    async def __call__(self, ctx: TaskContext) -> dict[str, object]:
        queue = self.queue_of[ctx.task_id]
        self.by_queue[queue] = self.by_queue.get(queue, 0) + 1
        self.peaks[queue] = max(self.peaks.get(queue, 0), self.by_queue[queue])
        self.total_peak = max(self.total_peak, sum(self.by_queue.values()))
        try:
            return await super().__call__(ctx)
        finally:
            self.by_queue[queue] -= 1


async def test_two_queues_run_side_by_side_within_their_own_limits(
    make_engine: EngineFactory,
) -> None:
    queue_of: dict[str, str] = {}
    work = Tracker(queue_of)
    engine = await make_engine(work, max_concurrent=4, queues=QUEUES)
    engine.pause_queue("bulk")
    engine.pause_queue("fast")
    for i in range(12):
        for queue in ("bulk", "fast"):
            task = make_task(f"{queue}-{i}", queue=queue)
            queue_of[task.id] = queue
            await engine.submit(task)
    engine.resume_queue("bulk")
    engine.resume_queue("fast")
    await within(engine.join())

    assert work.peaks == {"bulk": 1, "fast": 3}
    assert work.total_peak == 4
    assert len(work.completed) == 24


async def test_the_agents_limit_bounds_all_queues_together(make_engine: EngineFactory) -> None:
    queue_of: dict[str, str] = {}
    work = Tracker(queue_of)
    engine = await make_engine(work, max_concurrent=2, queues=QUEUES)
    for i in range(8):
        for queue in ("bulk", "fast", "default"):
            task = make_task(f"{queue}-{i}", queue=queue)
            queue_of[task.id] = queue
            await engine.submit(task)
    await within(engine.join())
    assert work.total_peak == 2
    assert work.peaks["bulk"] == 1


async def test_a_busy_queue_does_not_starve_another(make_engine: EngineFactory) -> None:
    """Queues take turns: an urgent task in its own queue starts at the next free slot even
    behind a long line of bulk work (with one slot in all)."""
    work = Work()
    engine = await make_engine(work, max_concurrent=1, queues={"bulk": {}, "urgent": {}})
    bulk = [await engine.add_task(make_task(f"bulk-{i}", queue="bulk")) for i in range(5)]
    await work.started(bulk[0])
    urgent = await engine.add_task(make_task("urgent", queue="urgent"))
    work.release(bulk[0])
    await work.started(urgent)
    assert work.starts == [bulk[0], urgent]
    work.release()
    await within(engine.join())


async def test_priorities_apply_within_a_queue(make_engine: EngineFactory) -> None:
    work = Work(block=False)
    engine = await make_engine(work, max_concurrent=1, queues={"bulk": {}})
    engine.pause_queue("bulk")
    low = await engine.add_task(make_task("low", queue="bulk", priority=TaskPriority.LOW))
    high = await engine.add_task(make_task("high", queue="bulk", priority=TaskPriority.HIGH))
    positions = [engine.queue_position(await engine.require_task(i)) for i in (low, high)]
    assert positions == [2, 1]
    engine.resume_queue("bulk")
    await within(engine.join())
    assert work.starts == [high, low]


async def test_pausing_one_queue_leaves_the_others_running(make_engine: EngineFactory) -> None:
    work = Work(block=False)
    engine = await make_engine(work, queues={"bulk": {}})
    await engine.pause_queue("bulk")
    held = await engine.add_task(make_task("held", queue="bulk"))
    ran = await engine.add_task(make_task("ran"))
    assert (await within(engine.wait_for(ran))).status is TaskStatus.COMPLETED
    assert (await engine.require_task(held)).status is TaskStatus.PENDING
    assert engine.queue_view("bulk").paused
    assert not engine.paused
    await engine.resume_queue("bulk")
    assert (await within(engine.wait_for(held))).status is TaskStatus.COMPLETED


async def test_a_queues_pause_survives_a_restart(make_engine: EngineFactory, tmp_path) -> None:
    engine = await make_engine(Work(block=False), queues={"bulk": {}})
    await engine.pause_queue("bulk")
    await engine.close()
    again = await make_engine(Work(block=False), queues={"bulk": {}})
    assert again.queue_view("bulk").paused
    assert not again.queue_view("default").paused


async def test_each_queue_has_its_own_size_limit_and_defaults(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(
        Work(),
        max_concurrent=1,
        queues={"small": {"max_queue_size": 1, "default_timeout_s": 5, "max_retries": 0}},
    )
    await engine.pause_queue("small")
    first = await engine.add_task(make_task("first", queue="small"))
    with pytest.raises(QueueFull) as refused:
        await engine.add_task(make_task("second", queue="small"))
    assert refused.value.details["queue"] == "small"
    await engine.add_task(make_task("elsewhere"))  # the default queue still takes work
    task = await engine.require_task(first)
    assert (task.timeout_s, task.max_retries) == (5, 0)


async def test_a_task_for_an_unknown_queue_is_refused(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    with pytest.raises(AiAdminError) as refused:
        await engine.submit(make_task(queue="nowhere"))
    assert refused.value.code is ErrorCode.QUEUE_NOT_FOUND
    assert engine.queue_view().waiting == 0


async def test_queues_are_created_configured_and_deleted_at_run_time(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=4)
    view = await engine.create_queue("night", QueueSettings(max_concurrent=1))
    assert (view.limits.max_concurrent, view.own_limits) == (1, ["max_concurrent"])
    with pytest.raises(AiAdminError) as exists:
        await engine.create_queue("night", QueueSettings())
    assert exists.value.code is ErrorCode.QUEUE_ALREADY_EXISTS

    task_id = await engine.add_task(make_task("nightly", queue="night"))
    await work.started(task_id)
    with pytest.raises(AiAdminError) as busy:
        await engine.delete_queue("night")
    assert busy.value.code is ErrorCode.QUEUE_NOT_EMPTY
    view = await engine.configure_queue("night", QueueSettings(max_queue_size=7))
    assert (view.limits.max_concurrent, view.limits.max_queue_size, view.running) == (1, 7, 1)

    work.release()
    await within(engine.wait_for(task_id))
    await engine.delete_queue("night")
    assert [q.name for q in engine.queue_views()] == ["default"]
    with pytest.raises(InvalidParams):
        await engine.delete_queue("default")


async def test_a_task_of_a_queue_no_longer_configured_still_runs_after_a_restart(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(Work(), queues={"gone": {}})
    await engine.pause_queue("gone")
    task_id = await engine.add_task(make_task("orphan", queue="gone"))
    await engine.close()
    work = Work(block=False)
    again = await make_engine(work)  # "gone" is no longer configured
    assert "gone" in [q.name for q in again.queue_views()]
    assert again.queue_view("gone").paused  # its pause was kept
    await again.resume_queue("gone")
    assert (await within(again.wait_for(task_id))).status is TaskStatus.COMPLETED


async def test_pausing_and_resuming_a_queue_from_many_clients_ends_as_the_last_asked(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(Work(block=False), queues={"bulk": {}})
    actions = [
        engine.pause_queue("bulk") if i % 2 else engine.resume_queue("bulk") for i in range(9)
    ]
    await asyncio.gather(*actions)
    # the last one asked (i = 8) is a resume
    assert not engine.queue_view("bulk").paused
    await engine.close()
    again = await make_engine(Work(block=False), queues={"bulk": {}})
    assert not again.queue_view("bulk").paused


async def test_queues_made_or_changed_at_run_time_survive_a_restart(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(Work(block=False), queues={"configured": {"max_concurrent": 2}})
    await engine.create_queue("made", QueueSettings(max_concurrent=1, max_retries=0))
    await engine.configure_queue("configured", QueueSettings(max_concurrent=3))
    await engine.create_queue("dropped", QueueSettings())
    await engine.delete_queue("dropped")
    await engine.close()

    again = await make_engine(Work(block=False), queues={"configured": {"max_concurrent": 2}})
    views = {q.name: q for q in again.queue_views()}
    assert sorted(views) == ["configured", "default", "made"]
    assert (views["made"].limits.max_concurrent, views["made"].limits.max_retries) == (1, 0)
    assert views["configured"].limits.max_concurrent == 3  # the change wins over the file


async def test_every_change_of_a_named_queue_is_an_event_once_it_is_stored(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(Work())
    watch = engine.events.watch()
    await engine.create_queue("bulk", QueueSettings(max_concurrent=1))
    await engine.configure_queue("bulk", QueueSettings(max_concurrent=2))
    await engine.pause_queue("bulk")
    await engine.pause_queue("bulk")  # already paused: no change, no event
    await engine.resume_queue("bulk")
    await engine.pause_queue()  # the default queue too
    await engine.resume_queue()
    await engine.delete_queue("bulk")

    seen = []
    while len(seen) < 7:
        event = await within(watch.next())
        if isinstance(event, ObjectEvent):
            seen.append((event.event, event.subject_id))
    assert seen == [
        ("queue_created", "bulk"),
        ("queue_configured", "bulk"),
        ("queue_paused", "bulk"),
        ("queue_resumed", "bulk"),
        ("queue_paused", "default"),
        ("queue_resumed", "default"),
        ("queue_deleted", "bulk"),
    ]
    watch.close()
