"""Firings take turns with the rest of the event loop: ``Turns`` lets one key through every
few turns of the loop, in order, and a burst of schedules due at once begins one firing at a
time instead of all of them before anything else runs."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from queue_helpers import Work, executors_for, make_settings, within

from ai_admin.python_api import TaskQueue
from ai_admin.queue.engine import Submission
from ai_admin.queue.models import DockerTask, TaskType
from ai_admin.queue.sqlite_store import SqliteStore
from ai_admin.schedule.pacing import Turns


@contextmanager
def loop_turns() -> Iterator[list[int]]:
    """``[n]``: how many turns the loop has made since (a callback that runs once a turn)."""
    count = [0]
    running = True
    loop = asyncio.get_running_loop()

    def tick() -> None:
        count[0] += 1
        if running:
            loop.call_soon(tick)

    loop.call_soon(tick)
    try:
        yield count
    finally:
        running = False


@pytest.mark.parametrize("every", [1, 2, 3])
async def test_keys_go_one_every_few_turns_of_the_loop_in_the_order_they_came(
    every: int,
) -> None:
    through: list[tuple[int, int]] = []  # (key, loop turn)

    with loop_turns() as turn:
        turns: Turns[int] = Turns(lambda key: through.append((key, turn[0])), every=every)
        for key in range(50):
            turns.add(key)
        assert turns.waiting == 50
        await within(turns.drained())

    assert turns.waiting == 0
    assert [key for key, _ in through] == list(range(50))
    at = [t for _, t in through]
    assert all(later - earlier >= every for earlier, later in itertools.pairwise(at)), at
    assert max(later - earlier for earlier, later in itertools.pairwise(at)) <= every + 1, at


async def test_a_key_already_waiting_keeps_its_place_and_goes_once() -> None:
    through: list[str] = []
    turns: Turns[str] = Turns(through.append)
    assert [turns.add(k) for k in ("a", "b", "a", "c", "b")] == [True, True, False, True, False]
    await within(turns.drained())
    assert through == ["a", "b", "c"]
    assert turns.add("a")  # through: it may wait again
    await within(turns.drained())
    assert through == ["a", "b", "c", "a"]


class CountingQueue(TaskQueue):
    """Counts the firings' submits as they begin."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fired = 0

    async def submit(self, task: DockerTask) -> Submission:
        if task.schedule_id is not None:
            self.fired += 1
        return await super().submit(task)


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[CountingQueue]:
    queue = CountingQueue(
        SqliteStore(tmp_path / "q.db"),
        executors_for(Work(block=False)),
        make_settings(tmp_path, max_queue_size=1000),
    )
    await queue.start()
    try:
        yield queue
    finally:
        await queue.close()


async def test_a_burst_of_due_schedules_begins_one_firing_at_a_time_and_waits_as_ids(
    queue: CountingQueue,
) -> None:
    due = datetime.now(UTC) + timedelta(seconds=2)
    for i in range(100):
        task = DockerTask(task_type=TaskType.PULL, params={"image_name": f"team/app{i}"})
        await queue.schedule(task, name=f"s{i}", at=due.isoformat())
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() - 0.5))
    seen = [queue.fired]  # firings begun, at each turn of the loop
    held: list[tuple[int, int]] = []  # (firings waiting, tasks) at each turn

    async def watch() -> None:
        while queue.fired < 100:
            await asyncio.sleep(0)
            seen.append(queue.fired)
            held.append((queue.scheduler.schedules.firings_waiting, len(asyncio.all_tasks())))

    await within(watch())
    most_in_one_turn = max(later - earlier for earlier, later in itertools.pairwise(seen))
    assert most_in_one_turn <= 2, most_in_one_turn
    # What waits is the schedule's id, not a task: a suspended coroutine per due firing is
    # what the garbage collector walked at every collection under such a burst.
    assert max(waiting for waiting, _ in held) > 50
    assert max(tasks for waiting, tasks in held if waiting) < 30, held


async def test_a_schedule_due_again_before_its_firing_began_folds_into_it(
    queue: CountingQueue,
) -> None:
    task = DockerTask(task_type=TaskType.PULL, params={"image_name": "team/app"})
    view = await queue.schedule(task, name="hourly", cron="0 * * * *")
    service = queue.scheduler.schedules
    await service._fire(view.schedule_id)  # the job APScheduler runs, due twice before
    await service._fire(view.schedule_id)  # the loop turns (neither call yields to it)
    assert service.firings_waiting == 1
    await within(service.settle())
    assert queue.fired == 1
    assert (service.stats.outcomes["submitted"], service.stats.outcomes["folded"]) == (1, 1)
    assert (await queue.get_schedule(view.schedule_id)).runs == 1
