"""Control actions sent together never lose a task, and each answer tells the truth.

Every pair and triple of pause, resume, cancel, retry and forced retry is fired at one task at
each moment of its life (waiting, held, starting, running, finishing, being recorded as failed,
finished), at several loop-turn offsets and with the actions staggered by loop turns, so they
land on every window between a change and its write. After each round the task must be in one
consistent place (live in memory if and only if unfinished there, memory equal to the store),
the statistics must count what is stored, a waiting task must run, and every accepted action
must be one durable, published transition (a refused one gets the state machine's 409 code).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from queue_helpers import EngineFactory, Work, assert_consistent, make_task, within

from ai_admin.errors import ErrorCode, ExecutionError, TransitionNotAllowed
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.sqlite_store import SqliteStore

S = TaskStatus
ACTIONS = ("pause", "resume", "cancel", "retry", "retry!")  # retry! is a forced retry
# The status an accepted action answers with.
MADE = {
    "pause": S.PAUSED,
    "resume": S.PENDING,
    "cancel": S.CANCELLED,
    "retry": S.PENDING,
    "retry!": S.PENDING,
}
COMBOS = [
    *itertools.combinations_with_replacement(ACTIONS, 2),
    *itertools.combinations_with_replacement(ACTIONS, 3),
]
STAGGERS = (0, 1, 3)  # loop turns between one action and the next
TRANSIENT_OFFSETS = (0, 1, 2, 3, 5)  # loop turns after the stage is reached
STABLE_OFFSETS = (0,)


@dataclass
class Round:
    engine: QueueEngine
    work: Work
    store: SqliteStore
    seen: list[str]


async def turns(n: int) -> None:
    """Let the loop run ``n`` turns: how the tests step through the windows between a change
    and its write (never a wait for an outcome)."""
    for _ in range(n):
        await asyncio.sleep(0)


def act(engine: QueueEngine, action: str, task_id: str) -> Awaitable[DockerTask]:
    calls: dict[str, Callable[[], Awaitable[DockerTask]]] = {
        "pause": lambda: engine.pause_task(task_id),
        "resume": lambda: engine.resume_task(task_id),
        "cancel": lambda: engine.cancel_task(task_id),
        "retry": lambda: engine.retry_task(task_id),
        "retry!": lambda: engine.retry_task(task_id, force=True),
    }
    return calls[action]()


async def _reach(r: Round, stage: str, name: str) -> str:
    """Submit a task and bring it to ``stage``; returns its id."""
    task = make_task(name, max_retries=1)
    _prepare(r, stage, task.id)
    task_id = await r.engine.add_task(task)
    await _advance(r, stage, task_id)
    return task_id


def _prepare(r: Round, stage: str, task_id: str) -> None:
    """What must be set before the task is submitted."""
    if stage in ("waiting", "held", "starting", "cancelled"):
        r.engine.pause_queue()
    if stage in ("failing", "failed"):
        r.work.fail_late(
            task_id, ExecutionError("no such image", code=ErrorCode.DOCKER_PULL_FAILED)
        )
    if stage in ("completed", "failed"):
        r.work.release(task_id)


async def _advance(r: Round, stage: str, task_id: str) -> None:
    engine, work = r.engine, r.work
    if stage == "held":
        await engine.pause_task(task_id)
    elif stage == "cancelled":
        await engine.cancel_task(task_id)
    elif stage == "starting":  # launched, its "running" write not landed yet
        engine.resume_queue()
        while task_id not in {t.id for t in engine.running_tasks()}:
            await turns(1)
    elif stage in ("running", "finishing", "failing"):
        await work.started(task_id)
        if stage != "running":
            work.release(task_id)  # the outcome is decided and written in the next turns
    elif stage in ("completed", "failed"):
        await within(engine.wait_for(task_id))


async def _fire(
    engine: QueueEngine, task_id: str, combo: tuple[str, ...], stagger: int
) -> list[DockerTask | BaseException]:
    async def one(i: int, action: str) -> DockerTask:
        await turns(i * stagger)
        return await act(engine, action, task_id)

    calls = [one(i, a) for i, a in enumerate(combo)]
    return await within(asyncio.gather(*calls, return_exceptions=True))


async def _settle(r: Round, task_id: str) -> None:
    """Let everything run that may: a waiting task must reach an end (or stay held)."""
    r.engine.resume_queue()
    r.work.release(task_id)
    await within(r.engine.join())


def _check_answers(
    combo: tuple[str, ...], results: list[DockerTask | BaseException]
) -> Counter[str]:
    accepted: Counter[str] = Counter()
    for action, result in zip(combo, results, strict=True):
        if isinstance(result, DockerTask):
            assert result.status is MADE[action], f"{action} answered {result.status.value}"
            accepted[action.rstrip("!")] += 1
        else:
            assert isinstance(result, TransitionNotAllowed), f"{action} raised {result!r}"
            assert result.http_status == 409, result
    return accepted


async def _round(r: Round, stage: str, combo: tuple[str, ...], offset: int, stagger: int) -> None:
    name = f"{stage}-{'-'.join(combo)}-{offset}-{stagger}"
    task_id = await _reach(r, stage, name)
    r.seen.append(task_id)
    before = dict((await r.engine.get_queue_stats())["counters"])
    events = r.engine.subscribe(task_id)
    await turns(offset)

    results = await _fire(r.engine, task_id, combo, stagger)

    accepted = _check_answers(combo, results)
    await _settle(r, task_id)
    events.close()
    statuses = Counter([e.status async for e in events if e.event == "status"])
    # Each accepted pause or cancel is one published (so durable) transition, and no more.
    assert statuses["paused"] == accepted["pause"], (name, results, statuses)
    assert statuses["cancelled"] == accepted["cancel"], (name, results, statuses)
    after = (await r.engine.get_queue_stats())["counters"]
    assert after["retried"] - before["retried"] == accepted["retry"], name
    assert after["cancelled"] - before["cancelled"] == accepted["cancel"], name
    final = await r.engine.require_task(task_id)
    assert final.status in {S.PAUSED} | {s for s in S if s.is_finished}, (name, final.status)
    await assert_consistent(r.engine, r.store, [task_id])


STAGES = {
    "waiting": STABLE_OFFSETS,
    "held": STABLE_OFFSETS,
    "starting": TRANSIENT_OFFSETS,
    "running": STABLE_OFFSETS,
    "finishing": TRANSIENT_OFFSETS,
    "failing": TRANSIENT_OFFSETS,
    "failed": STABLE_OFFSETS,
    "cancelled": STABLE_OFFSETS,
    "completed": STABLE_OFFSETS,
}


@pytest.mark.parametrize("stage", list(STAGES))
async def test_concurrent_actions_leave_one_consistent_task(
    make_engine: EngineFactory, tmp_path: Path, stage: str
) -> None:
    work = Work()
    store = SqliteStore(tmp_path / "races.db")
    engine = await make_engine(work, store=store, max_concurrent=4)
    r = Round(engine, work, store, [])
    for combo in COMBOS:
        for offset in STAGES[stage]:
            for stagger in STAGGERS:
                await _round(r, stage, combo, offset, stagger)
    await assert_consistent(engine, store, r.seen)
    await _same_statistics_as_a_fresh_count(engine, store)


async def _same_statistics_as_a_fresh_count(engine: QueueEngine, store: SqliteStore) -> None:
    """The statistics the engine keeps equal those a restart rebuilds from the store."""
    stats = await engine.get_queue_stats()
    await engine.close()
    fresh = QueueEngine(SqliteStore(store.path), {}, engine.settings)
    try:
        await fresh.start()
        assert (await fresh.get_queue_stats())["distributions"] == stats["distributions"]
        assert (await fresh.get_queue_stats())["retries"] == stats["retries"]
    finally:
        await fresh.close()


# -- the races that lost tasks, one by one ---------------------------------------------------------


async def test_cancel_and_forced_retry_of_a_waiting_task_leave_it_queued(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    # Regression: both were answered 200 and the task stayed pending for ever, out of memory
    # (the cancel's write landed after the retry and took the task out of the queue).
    work = Work(block=False)
    store = SqliteStore(tmp_path / "q.db")
    engine = await make_engine(work, store=store)
    engine.pause_queue()
    task_id = await engine.add_task(make_task("waiting"))

    cancelled, retried = await within(
        asyncio.gather(engine.cancel_task(task_id), engine.retry_task(task_id, force=True))
    )

    assert cancelled.status is S.CANCELLED
    assert retried.status is S.PENDING
    assert [t.id for t in engine.pending_tasks()] == [task_id]
    await assert_consistent(engine, store, [task_id])
    engine.resume_queue()
    assert (await within(engine.wait_for(task_id))).status is S.COMPLETED
    assert work.starts == [task_id]
    stats = await engine.get_queue_stats()
    assert stats["distributions"]["status"] == {"completed": 1}  # counted once


async def test_retry_while_a_failure_is_being_recorded_runs_the_task_again(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    # Regression: a retry that arrived while the failure was being written put the task back in
    # the queue, then the failure's write took it out of memory: pending for ever.
    work = Work()
    store = SqliteStore(tmp_path / "q.db")
    engine = await make_engine(work, store=store)
    task = make_task("flaky", max_retries=1)
    work.fail_late(task.id, ExecutionError("no", code=ErrorCode.DOCKER_PULL_FAILED))
    task_id = await engine.add_task(task)
    await work.started(task_id)
    work.release(task_id)
    while engine.running_tasks():  # the outcome is decided: now being recorded
        await turns(1)

    retried = await within(engine.retry_task(task_id))

    assert retried.status is S.PENDING
    assert retried.retry_count == 1
    assert (await within(engine.wait_for(task_id))).status is S.COMPLETED
    assert work.attempts[task_id] == [1, 2]
    await assert_consistent(engine, store, [task_id])


async def test_pause_and_cancel_of_a_running_task_answer_one_200_and_one_409(
    make_engine: EngineFactory,
) -> None:
    # Regression: the second action waited for the first one's stop and answered 200 with a
    # task the first action had put in another state.
    work = Work()
    engine = await make_engine(work)
    task_id = await engine.add_task(make_task("busy"))
    await work.started(task_id)

    paused, cancelled = await within(
        asyncio.gather(
            engine.pause_task(task_id), engine.cancel_task(task_id), return_exceptions=True
        )
    )

    assert isinstance(paused, DockerTask)
    assert paused.status is S.PAUSED
    # Applied after the pause, to the paused task: a cancel of a paused task is allowed.
    assert isinstance(cancelled, DockerTask)
    assert cancelled.status is S.CANCELLED
    assert work.cancelled == [task_id]

    task_id = await engine.add_task(make_task("busy-again"))
    await work.started(task_id)
    cancelled, paused = await within(
        asyncio.gather(
            engine.cancel_task(task_id), engine.pause_task(task_id), return_exceptions=True
        )
    )
    assert isinstance(cancelled, DockerTask)
    assert isinstance(paused, TransitionNotAllowed)
    assert paused.code is ErrorCode.QUEUE_TASK_FINISHED


async def test_cancel_that_arrives_as_the_task_completes_is_refused(
    make_engine: EngineFactory,
) -> None:
    # Regression: a cancel that came in while the outcome was being written answered 200
    # with a task that had completed.
    work = Work()
    engine = await make_engine(work)
    task_id = await engine.add_task(make_task("done-soon"))
    await work.started(task_id)
    work.release(task_id)
    while engine.running_tasks():
        await turns(1)

    with pytest.raises(TransitionNotAllowed) as info:
        await within(engine.cancel_task(task_id))

    assert info.value.code is ErrorCode.QUEUE_TASK_FINISHED
    assert (await engine.require_task(task_id)).status is S.COMPLETED
