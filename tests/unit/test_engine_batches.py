"""Batches: submitted together, run one serial batch at a time per queue, followed as one."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from queue_helpers import EngineFactory, Work, make_task, within

from ai_admin.errors import AiAdminError, ErrorCode, ExecutionError
from ai_admin.queue.batches import BatchState
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.events import ObjectEvent
from ai_admin.queue.models import TaskStatus

S = BatchState


def _tasks(*names: str) -> list:  # type: ignore[type-arg]
    return [make_task(name) for name in names]


async def _state(engine: QueueEngine, batch_id: str) -> BatchState:
    return (await engine.batch_status(batch_id)).state


async def _until(engine: QueueEngine, batch_id: str, state: BatchState) -> None:
    assert (await within(engine.wait_for_batch(batch_id))).state is state


async def test_serial_batches_run_one_after_the_other(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=4)
    first = await engine.submit_batch(_tasks("a", "b"), name="first")
    second = await engine.submit_batch(_tasks("c", "d"), name="second")
    await work.started(first.task_ids[0])
    await work.started(first.task_ids[1])

    waiting = await engine.batch_status(second.batch_id)
    assert (waiting.state, waiting.position) == (S.QUEUED, 1)
    assert (await engine.batch_status(first.batch_id)).state is S.RUNNING
    await asyncio.sleep(0.05)
    assert sorted(work.starts) == sorted(first.task_ids)  # free slots, and still it waits

    work.release()
    await within(engine.join())
    await _until(engine, second.batch_id, S.COMPLETED)
    assert (await engine.batch_status(first.batch_id)).state is S.COMPLETED
    assert set(work.starts[:2]) == set(first.task_ids)
    assert set(work.starts[2:]) == set(second.task_ids)


async def test_a_stopped_batch_holds_the_next_until_it_is_started(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    first = await engine.submit_batch(_tasks("a", "b"))
    second = await engine.submit_batch(_tasks("c"))
    await work.started(first.task_ids[0])
    stopped = await engine.stop_batch(first.batch_id)
    assert (stopped.state, stopped.position) == (S.STOPPED, 1)

    work.release()  # the running task finishes; nothing new starts
    await within(engine.wait_for(first.task_ids[0]))
    await asyncio.sleep(0.05)
    assert work.starts == [first.task_ids[0]]
    assert await _state(engine, second.batch_id) is S.QUEUED

    await engine.start_batch(first.batch_id)
    await _until(engine, second.batch_id, S.COMPLETED)
    assert work.starts == [first.task_ids[0], first.task_ids[1], second.task_ids[0]]


async def test_moving_a_batch_changes_which_runs_next(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    first = await engine.submit_batch(_tasks("a"))
    second = await engine.submit_batch(_tasks("b"))
    third = await engine.submit_batch(_tasks("c"))
    await work.started(first.task_ids[0])
    moved = await engine.move_batch(third.batch_id, 1)
    assert moved.position == 1
    assert (await engine.batch_status(second.batch_id)).position == 2

    work.release()
    await _until(engine, second.batch_id, S.COMPLETED)
    assert work.starts == [*first.task_ids, *third.task_ids, *second.task_ids]


async def test_moving_ahead_of_a_stopped_batch_lets_the_line_go_on(
    make_engine: EngineFactory,
) -> None:
    work = Work(block=False)
    engine = await make_engine(work, max_concurrent=1)
    await engine.pause_queue()
    first = await engine.submit_batch(_tasks("a"))
    second = await engine.submit_batch(_tasks("b"))
    await engine.stop_batch(first.batch_id)
    await engine.resume_queue()
    await engine.move_batch(second.batch_id, 1)
    await _until(engine, second.batch_id, S.COMPLETED)
    assert await _state(engine, first.batch_id) is S.STOPPED
    assert work.starts == second.task_ids


async def test_a_batch_that_is_not_serial_runs_beside_the_line(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=4)
    line = await engine.submit_batch(_tasks("a"))
    beside = await engine.submit_batch(_tasks("b"), serial=False)
    await work.started(line.task_ids[0])
    await work.started(beside.task_ids[0])
    assert (await engine.batch_status(beside.batch_id)).position is None
    work.release()
    await _until(engine, beside.batch_id, S.COMPLETED)


async def test_a_failed_task_fails_its_batch_and_the_next_one_starts(
    make_engine: EngineFactory,
) -> None:
    work = Work(block=False)
    engine = await make_engine(work, max_concurrent=1)
    tasks = _tasks("a", "b")
    work.fail(
        tasks[0].id,
        ExecutionError("gone", code=ErrorCode.DOCKER_IMAGE_NOT_FOUND, transient=False),
    )
    first = await engine.submit_batch(tasks)
    second = await engine.submit_batch(_tasks("c"))
    await _until(engine, second.batch_id, S.COMPLETED)
    status = await engine.batch_status(first.batch_id)
    assert (status.state, status.counts, status.progress) == (
        S.FAILED,
        {"failed": 1, "completed": 1},
        100.0,
    )


async def test_entries_may_depend_on_earlier_ones_only(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=4)
    build, push = _tasks("build", "push")
    push.depends_on = [build.id]
    batch = await engine.submit_batch([build, push])
    await work.started(build.id)
    await asyncio.sleep(0.05)
    assert work.starts == [build.id]
    work.release()
    await _until(engine, batch.batch_id, S.COMPLETED)
    assert work.starts == [build.id, push.id]

    early, late = _tasks("early", "late")
    early.depends_on = [late.id]
    with pytest.raises(AiAdminError) as refused:
        await engine.submit_batch([early, late])
    assert refused.value.code is ErrorCode.QUEUE_DEPENDENCY_INVALID
    assert await engine.get_task(early.id) is None
    assert len(await engine.batch_views()) == 1


async def test_progress_only_rises_and_ends_at_100(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    batch = await engine.submit_batch(_tasks(*"abcde"))
    seen = [(await engine.batch_status(batch.batch_id)).progress]
    for task_id in batch.task_ids:
        await work.started(task_id)
        seen.append((await engine.batch_status(batch.batch_id)).progress)
        work.release(task_id)
        await within(engine.wait_for(task_id))
        seen.append((await engine.batch_status(batch.batch_id)).progress)
    await _until(engine, batch.batch_id, S.COMPLETED)
    seen.append((await engine.batch_status(batch.batch_id)).progress)
    assert seen == sorted(seen)
    assert seen[0] == 0.0
    assert seen[-1] == 100.0
    assert len(set(seen)) >= 5


async def test_cancelling_a_batch_cancels_its_tasks_and_lets_the_next_start(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    first = await engine.submit_batch(_tasks("a", "b"))
    second = await engine.submit_batch(_tasks("c"))
    await work.started(first.task_ids[0])
    cancelled = await engine.cancel_batch(first.batch_id)
    assert cancelled.state is S.CANCELLED
    assert cancelled.counts == {"cancelled": 2}
    await work.started(second.task_ids[0])
    work.release()
    await _until(engine, second.batch_id, S.COMPLETED)
    with pytest.raises(AiAdminError) as again:
        await engine.cancel_batch(first.batch_id)
    assert again.value.code is ErrorCode.BATCH_ACTION_NOT_ALLOWED


async def test_removing_a_batch(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    running = await engine.submit_batch(_tasks("a"))
    waiting = await engine.submit_batch(_tasks("b"))
    with pytest.raises(AiAdminError) as refused:
        await engine.remove_batch(running.batch_id)
    assert refused.value.code is ErrorCode.BATCH_ACTION_NOT_ALLOWED
    await engine.remove_batch(waiting.batch_id)
    assert (await engine.require_task(waiting.task_ids[0])).status is TaskStatus.CANCELLED
    with pytest.raises(AiAdminError) as gone:
        await engine.batch_status(waiting.batch_id)
    assert gone.value.code is ErrorCode.BATCH_NOT_FOUND
    work.release()
    await _until(engine, running.batch_id, S.COMPLETED)


async def test_batches_and_their_line_survive_a_restart(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    first = await engine.submit_batch(_tasks("a", "b"), name="first")
    second = await engine.submit_batch(_tasks("c"))
    third = await engine.submit_batch(_tasks("d"))
    await engine.move_batch(third.batch_id, 1)
    await work.started(first.task_ids[0])
    await engine.close(grace_s=0)

    again_work = Work(block=False)
    again = await make_engine(again_work, max_concurrent=1)
    status = await again.batch_status(first.batch_id)
    assert (status.name, status.state) == ("first", S.RUNNING)
    await _until(again, second.batch_id, S.COMPLETED)
    assert again_work.starts == [*first.task_ids, *third.task_ids, *second.task_ids]


async def test_a_finished_batch_counts_its_stored_tasks_after_a_restart(
    make_engine: EngineFactory,
) -> None:
    work = Work(block=False)
    engine = await make_engine(work, max_concurrent=2)
    tasks = _tasks("a", "b", "c")
    work.fail(
        tasks[1].id,
        ExecutionError("gone", code=ErrorCode.DOCKER_IMAGE_NOT_FOUND, transient=False),
    )
    batch = await engine.submit_batch(tasks)
    await _until(engine, batch.batch_id, S.FAILED)
    await engine.close()

    again = await make_engine(Work(block=False))  # nothing of it in memory: all read back
    view = await again.batch_status(batch.batch_id)
    assert (view.state, view.counts, view.progress) == (
        S.FAILED,
        {"completed": 2, "failed": 1},
        100.0,
    )
    assert await again.clear() == 2  # the completed ones: gone from its counts too
    (listed,) = [b for b in await again.batch_views() if b.batch_id == batch.batch_id]
    assert (listed.state, listed.counts, listed.task_ids) == (
        S.FAILED,
        {"failed": 1},
        batch.task_ids,
    )


async def test_batches_are_per_queue(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=4, queues={"bulk": {}})
    here = await engine.submit_batch(_tasks("a"))
    there = await engine.submit_batch(_tasks("b"), queue="bulk")
    await work.started(here.task_ids[0])
    await work.started(there.task_ids[0])  # each queue's line runs its own batch
    assert (await engine.require_task(there.task_ids[0])).queue == "bulk"
    assert [b.batch_id for b in await engine.batch_views("bulk")] == [there.batch_id]
    work.release()
    await within(engine.join())


async def test_stop_and_start_from_many_clients_end_consistent(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    batch = await engine.submit_batch(_tasks("a", "b"))
    await work.started(batch.task_ids[0])
    actions = [
        engine.stop_batch(batch.batch_id) if i % 2 == 0 else engine.start_batch(batch.batch_id)
        for i in range(10)
    ]
    results = await asyncio.gather(*actions, return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, AiAdminError)]
    assert len(accepted) + len(refused) == 10
    assert all(r.code is ErrorCode.BATCH_ACTION_NOT_ALLOWED for r in refused)
    # Each accepted action flips the state, so they alternate, and the last one is what stays.
    states = [r.state for r in accepted]
    assert all(a is not b for a, b in itertools.pairwise(states))
    assert await _state(engine, batch.batch_id) is states[-1]
    if states[-1] is S.STOPPED:
        await engine.start_batch(batch.batch_id)
    work.release()
    await _until(engine, batch.batch_id, S.COMPLETED)


async def test_every_change_of_a_batch_is_an_event_once_it_is_stored(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    watch = engine.events.watch()
    first = await engine.submit_batch(_tasks("a"), name="first")
    second = await engine.submit_batch(_tasks("b"))
    await engine.stop_batch(second.batch_id)
    await engine.start_batch(second.batch_id)
    work.release()
    await _until(engine, second.batch_id, S.COMPLETED)
    await engine.remove_batch(first.batch_id)

    seen = []
    while len(seen) < 9:
        event = await within(watch.next())
        if isinstance(event, ObjectEvent):
            seen.append((event.subject_id, event.event, event.data["state"]))
    one, two = first.batch_id, second.batch_id
    assert seen == [
        (one, "batch_created", "queued"),
        (one, "batch_started", "running"),
        (two, "batch_created", "queued"),
        (two, "batch_stopped", "stopped"),
        (two, "batch_resumed", "queued"),
        (one, "batch_finished", "completed"),
        (two, "batch_started", "running"),
        (two, "batch_finished", "completed"),
        (one, "batch_deleted", "completed"),
    ]
    watch.close()
