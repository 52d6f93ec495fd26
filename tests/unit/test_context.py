"""What an executor reports through: progress only rises and stays below 100, logs are bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_admin.queue.context import RunContext
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType


def _context(
    task: DockerTask, changes: list[tuple[str, dict[str, Any]]], log_lines: int = 3
) -> RunContext:
    async def commit(t: DockerTask) -> None:
        changes.append(("step", {"status": t.status.value}))

    return RunContext(
        task,
        {"auth": {"password": "x"}},
        log_lines=log_lines,
        loop=asyncio.get_running_loop(),
        commit_step=commit,
        changed=lambda t, kind, line: changes.append(
            (kind, {"progress": t.progress} | ({"line": line} if line is not None else {}))
        ),
    )


@settings(deadline=None)  # a loaded CI machine must not fail an example for slowness
@given(st.lists(st.floats(min_value=-50, max_value=250, allow_nan=False), max_size=40))
def test_progress_only_rises_and_stays_below_100(percents: list[float]) -> None:
    async def run() -> None:
        task = DockerTask(task_type=TaskType.PULL)
        changes: list[tuple[str, dict[str, Any]]] = []
        ctx = _context(task, changes)
        seen = [task.progress]
        for percent in percents:
            ctx.progress(percent)
            seen.append(task.progress)
        assert seen == sorted(seen)
        assert all(0 <= p <= 99.9 for p in seen)
        best = max([0.0, *(min(max(p, 0.0), 99.9) for p in percents)])
        assert task.progress == round(best, 1)
        # One event per rise, none for a repeat or a drop.
        rises = [p for p in seen[1:] if p > 0]
        assert [c[1]["progress"] for c in changes] == sorted(set(rises))

    asyncio.run(run())


async def test_a_description_updates_the_step_even_without_a_rise() -> None:
    task = DockerTask(task_type=TaskType.PULL)
    changes: list[tuple[str, dict[str, Any]]] = []
    ctx = _context(task, changes)
    ctx.progress(40, "Downloading 4 of 10 MB")
    ctx.progress(30, "Extracting")
    assert task.progress == 40
    assert task.current_step == "Extracting"
    assert len(changes) == 2


async def test_the_log_keeps_the_newest_lines() -> None:
    task = DockerTask(task_type=TaskType.PULL)
    changes: list[tuple[str, dict[str, Any]]] = []
    ctx = _context(task, changes, log_lines=3)
    for i in range(5):
        ctx.log(f"line {i}\n")
    assert task.logs == ["line 2", "line 3", "line 4"]
    assert [c[1]["line"] for c in changes] == [f"line {i}" for i in range(5)]


async def test_nothing_is_reported_once_the_run_is_stopped() -> None:
    task = DockerTask(task_type=TaskType.PULL)
    changes: list[tuple[str, dict[str, Any]]] = []
    ctx = _context(task, changes)
    ctx.stop()
    ctx.progress(50)
    ctx.log("late")
    assert task.progress == 0
    assert task.logs == []
    assert changes == []
    assert ctx.stop_requested.is_set()  # a worker thread asking afterwards learns it too


async def test_a_step_must_be_a_running_status_and_is_committed() -> None:
    task = DockerTask(task_type=TaskType.PULL, status=TaskStatus.RUNNING, retry_count=2)
    changes: list[tuple[str, dict[str, Any]]] = []
    ctx = _context(task, changes)
    assert ctx.attempt == 3
    assert ctx.params == {"auth": {"password": "x"}}
    await ctx.step(TaskStatus.BUILDING, "Building step 2/5")
    assert task.status is TaskStatus.BUILDING
    assert task.current_step == "Building step 2/5"
    assert changes == [("step", {"status": "building"})]
    with pytest.raises(ValueError, match="not a step"):
        await ctx.step(TaskStatus.COMPLETED)


async def test_reports_from_a_thread_arrive_on_the_loop_in_order() -> None:
    task = DockerTask(task_type=TaskType.PULL)
    changes: list[tuple[str, dict[str, Any]]] = []
    ctx = _context(task, changes, log_lines=100)

    def work() -> None:
        for i in range(1, 21):
            ctx.progress(i * 4)
            ctx.log(str(i))

    await asyncio.to_thread(work)  # its own completion is queued after the thread's reports
    assert task.progress == 80
    assert task.logs == [str(i) for i in range(1, 21)]
    progress = [c[1]["progress"] for c in changes if c[0] == "progress"]
    assert progress == [i * 4 for i in range(1, 21)]
