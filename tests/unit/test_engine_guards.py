"""The engine while an outcome is being written: the run has left the pool, its outcome is not
durable yet. The SQLite store commits within the same loop turn, which closes that moment
before a test can look; a ``HeldStore`` holds the commit open so each test looks at it.

Each test names the guard it protects; without the guard, the test fails.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from queue_helpers import EngineFactory, HeldStore, Work, make_task, refused, within

from ai_admin.errors import ErrorCode, QueueFull
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.models import TaskStatus

RELEASE_S = 0.1  # how long a held outcome stays unwritten: long enough for a bug to show


async def _finishing(work: Work, engine: QueueEngine, store: HeldStore, task_id: str) -> None:
    """Let ``task_id`` (running, its "running" state durable) complete, and return while its
    outcome is held: the run has left the pool and is recording its outcome."""
    await work.started(task_id)
    await engine.get_task(task_id)  # returns once the "running" write has landed
    store.hold()
    work.release(task_id)
    await store.until_held_in(task_id, TaskStatus.COMPLETED)


async def test_a_run_recording_its_outcome_does_not_count_as_waiting(
    make_engine: EngineFactory, held_store: HeldStore
) -> None:
    # Guard: _check_capacity subtracts the finishing runs. Without it, the only task in the
    # queue, already done, counts as waiting and a submit gets QUEUE_FULL.
    work = Work()
    engine = await make_engine(work, store=held_store, max_concurrent=1, max_queue_size=1)
    first = await engine.add_task(make_task("first"))
    await _finishing(work, engine, held_store, first)
    assert engine.pending_tasks() == []  # nothing waits

    held_store.release_after(RELEASE_S)
    try:
        second = await within(engine.submit(make_task("second")))
    except QueueFull as exc:
        pytest.fail(f"QUEUE_FULL with nothing waiting: {exc}")
    assert second.status is TaskStatus.PENDING
    work.release()
    assert (await within(engine.wait_for(second.task_id))).status is TaskStatus.COMPLETED
    assert (await engine.require_task(first)).status is TaskStatus.COMPLETED


async def test_close_waits_for_an_outcome_being_written(
    make_engine: EngineFactory, held_store: HeldStore, tmp_path: Path
) -> None:
    # Guard: close() waits for the runs in _finishing, also with no grace. Without it the
    # store closes with the outcome unwritten: the completed task comes back pending after a
    # restart and runs again.
    work = Work()
    engine = await make_engine(work, store=held_store)
    task_id = await engine.add_task(make_task("done-at-close"))
    await _finishing(work, engine, held_store, task_id)

    held_store.release_after(RELEASE_S)
    await within(engine.close(grace_s=0))

    rerun = Work(block=False)
    reopened = await make_engine(rerun, db=tmp_path / "q.db")
    stored = await reopened.require_task(task_id)
    assert stored.status is TaskStatus.COMPLETED, stored.current_step
    await within(reopened.join())
    assert rerun.starts == []  # it ran once, before the restart
    assert work.completed == [task_id]


async def test_join_returns_only_once_the_outcome_is_durable(
    make_engine: EngineFactory, held_store: HeldStore
) -> None:
    # Guard: the queue is not idle while a run is in _finishing (_update_idle). Without it
    # join() returns while the outcome is unwritten, and the store still says "running".
    work = Work()
    engine = await make_engine(work, store=held_store)
    task_id = await engine.add_task(make_task("joined"))
    await _finishing(work, engine, held_store, task_id)

    held_store.release_after(RELEASE_S)
    await within(engine.join())

    stored = await held_store.inner.get(task_id)  # the database itself, not the engine's view
    assert stored is not None
    assert stored.status is TaskStatus.COMPLETED, "join() returned before the outcome was stored"


async def test_an_action_on_a_task_recording_its_outcome_applies_to_the_outcome(
    make_engine: EngineFactory, held_store: HeldStore
) -> None:
    # An action waits for the outcome being written (control._settled) and decides on it: a
    # cancel of a task that completed meanwhile is refused, whatever the store's pace.
    work = Work()
    engine = await make_engine(work, store=held_store)
    task_id = await engine.add_task(make_task("completing"))
    await _finishing(work, engine, held_store, task_id)

    cancel = asyncio.create_task(engine.cancel_task(task_id))
    await asyncio.sleep(RELEASE_S)
    assert not cancel.done(), "the cancel decided before the outcome was durable"
    held_store.release()
    await refused(cancel, ErrorCode.QUEUE_TASK_FINISHED)
    assert (await engine.require_task(task_id)).status is TaskStatus.COMPLETED
