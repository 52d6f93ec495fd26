"""Firings take turns with the rest of the event loop: ``Turns`` lets one waiter through every
few turns of the loop, in order, and a burst of schedules due at once begins one firing at a
time instead of all of them before anything else runs."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
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
async def test_waiters_go_one_every_few_turns_of_the_loop_in_the_order_they_came(
    every: int,
) -> None:
    turns = Turns(every=every)
    through: list[tuple[int, int]] = []  # (waiter, loop turn)

    with loop_turns() as turn:

        async def waiter(i: int) -> None:
            await turns.take()
            through.append((i, turn[0]))

        await within(asyncio.gather(*(waiter(i) for i in range(50))))

    assert [i for i, _ in through] == list(range(50))
    at = [t for _, t in through]
    assert all(later - earlier >= every for earlier, later in itertools.pairwise(at)), at
    assert max(later - earlier for earlier, later in itertools.pairwise(at)) <= every + 1, at


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    turns = Turns()
    through: list[int] = []

    async def waiter(i: int) -> None:
        await turns.take()
        through.append(i)

    tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
    await asyncio.sleep(0)  # all of them waiting
    tasks[1].cancel()
    tasks[3].cancel()
    await within(asyncio.gather(*tasks, return_exceptions=True))
    assert through == [0, 2, 4]


class CountingQueue(TaskQueue):
    """Counts the firings' submits as they begin."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fired = 0

    async def submit(self, task: DockerTask) -> Submission:
        if task.schedule_id is not None:
            self.fired += 1
        return await super().submit(task)


async def test_a_burst_of_due_schedules_begins_one_firing_at_a_time(tmp_path: Path) -> None:
    queue = CountingQueue(
        SqliteStore(tmp_path / "q.db"),
        executors_for(Work(block=False)),
        make_settings(tmp_path, max_queue_size=1000),
    )
    await queue.start()
    try:
        due = datetime.now(UTC) + timedelta(seconds=2)
        for i in range(100):
            task = DockerTask(task_type=TaskType.PULL, params={"image_name": f"team/app{i}"})
            await queue.schedule(task, name=f"s{i}", at=due.isoformat())
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() - 0.5))
        seen = [queue.fired]  # firings begun, at each turn of the loop

        async def watch() -> None:
            while queue.fired < 100:
                await asyncio.sleep(0)
                seen.append(queue.fired)

        await within(watch())
    finally:
        await queue.close()
    most_in_one_turn = max(later - earlier for earlier, later in itertools.pairwise(seen))
    assert most_in_one_turn <= 2, most_in_one_turn
