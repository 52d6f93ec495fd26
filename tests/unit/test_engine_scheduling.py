"""Scheduling: priority then FIFO, the worker bound, positions, queue pause, QUEUE_FULL."""

from __future__ import annotations

import pytest
from queue_helpers import EngineFactory, Work, make_task, within

from ai_admin.errors import ErrorCode, QueueFull
from ai_admin.queue.models import TaskPriority, TaskStatus
from ai_admin.queue.store import TaskQuery

P = TaskPriority


async def test_tasks_run_by_priority_then_in_submission_order(make_engine: EngineFactory) -> None:
    work = Work(block=False)
    engine = await make_engine(work, max_concurrent=1)
    engine.pause_queue()  # everything is queued before anything starts
    plan = [
        ("n1", P.NORMAL),
        ("l1", P.LOW),
        ("c1", P.CRITICAL),
        ("h1", P.HIGH),
        ("n2", P.NORMAL),
        ("c2", P.CRITICAL),
        ("l2", P.LOW),
        ("h2", P.HIGH),
    ]
    ids = {}
    for name, priority in plan:
        ids[name] = await engine.add_task(make_task(name, priority=priority))

    engine.resume_queue()
    await within(engine.join())

    names = {v: k for k, v in ids.items()}
    assert [names[i] for i in work.starts] == ["c1", "c2", "h1", "h2", "n1", "n2", "l1", "l2"]


async def test_a_later_higher_priority_task_overtakes_waiting_ones(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    first = await engine.add_task(make_task("first", priority=P.LOW))
    await work.started(first)
    low = await engine.add_task(make_task("low", priority=P.LOW))
    normal = await engine.add_task(make_task("normal"))
    critical = await engine.add_task(make_task("critical", priority=P.CRITICAL))

    work.release()
    await within(engine.join())

    # The running task is not pre-empted; the waiting ones go by priority.
    assert work.starts == [first, critical, normal, low]


async def test_never_more_than_max_concurrent_tasks_run(make_engine: EngineFactory) -> None:
    work = Work(block=False, hold_s=0.002)
    engine = await make_engine(work, max_concurrent=3)
    engine.pause_queue()  # all 40 wait, so the pool fills however slow submitting is
    ids = [await engine.add_task(make_task(f"t{i}")) for i in range(40)]
    engine.resume_queue()

    await within(engine.join())

    assert work.peak == 3  # the bound was reached and never exceeded
    assert sorted(work.completed) == sorted(ids)
    for task_id in ids:
        task = await engine.get_task(task_id)
        assert task is not None
        assert task.status is TaskStatus.COMPLETED
    stats = await engine.get_queue_stats()
    assert stats["summary"]["running"] == 0
    assert stats["summary"]["max_concurrent"] == 3


async def test_running_tasks_are_bounded_while_work_is_held(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=2)
    ids = [await engine.add_task(make_task(f"t{i}")) for i in range(5)]
    await work.wait_until(lambda: len(work.starts) == 2)

    assert [t.id for t in engine.running_tasks()] == ids[:2]
    assert [t.id for t in engine.pending_tasks()] == ids[2:]
    stats = await engine.get_queue_stats()
    assert stats["summary"]["running"] == 2
    assert stats["summary"]["queue_size"] == 3

    work.release(ids[0])
    await work.started(ids[2])
    assert work.active == 2
    work.release()
    await within(engine.join())
    assert work.peak == 2


async def test_queue_position_is_one_to_n_in_run_order(make_engine: EngineFactory) -> None:
    work = Work(block=False)
    engine = await make_engine(work, max_concurrent=1)
    engine.pause_queue()
    submitted = []
    for name, priority in [("a", P.LOW), ("b", P.NORMAL), ("c", P.HIGH), ("d", P.NORMAL)]:
        submitted.append(await engine.submit(make_task(name, priority=priority)))
    by_name = dict(zip("abcd", (s.task_id for s in submitted), strict=True))

    # At submit time each task learns where it stands among those queued so far.
    assert [s.queue_position for s in submitted] == [1, 1, 1, 3]

    run_order = [by_name[n] for n in "cbda"]
    positions = {i: engine.queue_position(await engine.require_task(i)) for i in run_order}
    assert [positions[i] for i in run_order] == [1, 2, 3, 4]
    assert [t.id for t in engine.pending_tasks()] == run_order
    summary = await engine.get_task_summary(by_name["a"])
    assert summary["queue_position"] == 4

    await engine.cancel_task(by_name["b"])
    after_cancel = [by_name[n] for n in "cda"]
    assert [engine.queue_position(await engine.require_task(i)) for i in after_cancel] == [1, 2, 3]

    engine.resume_queue()
    await within(engine.join())
    assert work.starts == after_cancel
    done = await engine.require_task(by_name["a"])
    assert engine.queue_position(done) is None


async def test_pausing_the_queue_lets_running_tasks_finish_and_starts_nothing(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=2)
    a, b, c = [await engine.add_task(make_task(n)) for n in "abc"]
    await work.wait_until(lambda: len(work.starts) == 2)

    engine.pause_queue()
    assert engine.paused
    work.release()
    await within(engine.join())  # a paused queue with nothing running counts as idle

    assert (await engine.require_task(a)).status is TaskStatus.COMPLETED
    assert (await engine.require_task(b)).status is TaskStatus.COMPLETED
    waiting = await engine.require_task(c)
    assert waiting.status is TaskStatus.PENDING
    assert c not in work.starts
    assert engine.queue_position(waiting) == 1
    stats = await engine.get_queue_stats()
    assert stats["queue"]["paused"] is True

    engine.resume_queue()
    await within(engine.join())
    assert (await engine.require_task(c)).status is TaskStatus.COMPLETED
    assert (await engine.get_queue_stats())["queue"]["paused"] is False


async def test_queue_full_refuses_a_task_without_creating_or_losing_any(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1, max_queue_size=3)
    running = await engine.add_task(make_task("running"))
    await work.started(running)
    waiting = [await engine.add_task(make_task(f"w{i}")) for i in range(3)]

    extra = make_task("extra")
    with pytest.raises(QueueFull) as info:
        await engine.submit(extra)
    assert info.value.code is ErrorCode.QUEUE_FULL
    assert info.value.details["max_queue_size"] == 3
    assert await engine.get_task(extra.id) is None
    _, total = await engine.list_tasks(TaskQuery())
    assert total == 4

    # A paused task is still waiting: it keeps its place in the count.
    await engine.pause_task(waiting[0])
    with pytest.raises(QueueFull):
        await engine.submit(make_task("extra2"))

    await engine.resume_task(waiting[0])
    work.release()
    await within(engine.join())
    for task_id in [running, *waiting]:
        assert (await engine.require_task(task_id)).status is TaskStatus.COMPLETED
    later = await engine.add_task(make_task("later"))
    assert (await within(engine.wait_for(later))).status is TaskStatus.COMPLETED


async def test_a_finished_task_frees_its_queue_slot_at_once(make_engine: EngineFactory) -> None:
    # Regression: a task whose outcome was still being written counted as waiting, so the
    # queue refused work with QUEUE_FULL although nothing was waiting.
    work = Work()
    engine = await make_engine(work, max_concurrent=1, max_queue_size=1)
    for i in range(5):
        first = await engine.add_task(make_task(f"first{i}"))
        await work.started(first)
        second = await engine.add_task(make_task(f"second{i}"))
        with pytest.raises(QueueFull):
            await engine.submit(make_task(f"refused{i}"))

        work.release(first)
        await work.started(second)  # first is done; second runs; nothing waits
        third = await engine.add_task(make_task(f"third{i}"))
        work.release(second)
        work.release(third)
        await within(engine.join())
        assert (await engine.require_task(third)).status is TaskStatus.COMPLETED
