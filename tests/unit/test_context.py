"""What an executor reports through: progress only rises and stays below 100, logs are bounded,
counts become the task's ``progress_detail`` with a rate and time left on the context's clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_admin.queue.context import RunContext
from ai_admin.queue.models import DockerTask, ProgressDetail, TaskStatus, TaskType

MB = 1_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def _context(
    task: DockerTask,
    changes: list[tuple[str, dict[str, Any]]],
    log_lines: int = 3,
    clock: FakeClock | None = None,
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
            (
                kind,
                {"progress": t.progress, "detail": t.progress_detail}
                | ({"line": line} if line is not None else {}),
            )
        ),
        **({"clock": clock} if clock is not None else {}),
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


async def test_bytes_become_numbers_with_a_rate_and_time_left() -> None:
    task = DockerTask(task_type=TaskType.PULL)
    changes: list[tuple[str, dict[str, Any]]] = []
    clock = FakeClock()
    ctx = _context(task, changes, clock=clock)
    ctx.progress(0, phase="downloading", bytes_done=0, bytes_total=10 * MB, layers_total=2)
    assert task.progress_detail == ProgressDetail(
        phase="downloading", bytes_done=0, bytes_total=10 * MB, layers_total=2
    )  # no rate before bytes move, so no time left either
    for second in range(1, 6):
        clock.now_s += 1
        ctx.progress(second * 16, phase="downloading", bytes_done=second * 2 * MB)
    detail = task.progress_detail
    assert detail is not None
    assert (detail.bytes_done, detail.bytes_total) == (10 * MB, 10 * MB)  # the total is kept
    assert detail.rate_bps == 2 * MB
    assert detail.eta_s == 0.0
    assert detail.layers_total == 2  # kept too, until the phase reports it again
    etas = [c[1]["detail"].eta_s for c in changes if c[0] == "progress"]
    assert etas == [None, 4.0, 3.0, 2.0, 1.0, 0.0]


async def test_a_new_phase_counts_from_zero() -> None:
    task = DockerTask(task_type=TaskType.PULL)
    clock = FakeClock()
    ctx = _context(task, [], clock=clock)
    ctx.progress(10, phase="downloading", bytes_done=0, bytes_total=10 * MB, layers_done=1)
    clock.now_s += 1
    ctx.progress(80, phase="downloading", bytes_done=10 * MB)
    ctx.progress(80, phase="extracting", bytes_done=0, bytes_total=10 * MB)
    assert task.progress_detail == ProgressDetail(
        phase="extracting", bytes_done=0, bytes_total=10 * MB
    )
    clock.now_s += 2
    ctx.progress(90, phase="extracting", bytes_done=MB)
    assert task.progress_detail is not None
    assert task.progress_detail.rate_bps == MB / 2  # not the download's 10 MB/s
    assert task.progress_detail.eta_s == 18.0


async def test_numbers_alone_are_a_change_and_a_new_attempt_starts_without_them() -> None:
    task = DockerTask(task_type=TaskType.PUSH)
    changes: list[tuple[str, dict[str, Any]]] = []
    clock = FakeClock()
    ctx = _context(task, changes, clock=clock)
    ctx.progress(50, phase="uploading", bytes_done=5, bytes_total=10)
    clock.now_s += 1
    ctx.progress(50, phase="uploading", bytes_done=6)  # the percentage did not move
    ctx.progress(50, phase="uploading", bytes_done=6)  # nothing did
    assert [c[1]["detail"].bytes_done for c in changes] == [5, 6]
    assert task.progress_detail is not None
    ctx.stop()
    _context(task, [], clock=clock)  # the next attempt's context
    assert task.progress_detail is None


async def test_the_time_of_a_report_is_when_it_was_made_not_when_the_loop_took_it() -> None:
    task = DockerTask(task_type=TaskType.PULL)
    clock = FakeClock()
    ctx = _context(task, [], clock=clock)

    def work() -> None:
        for i in range(11):
            ctx.progress(i, phase="downloading", bytes_done=i * MB, bytes_total=10 * MB)
            clock.now_s += 0.5

    await asyncio.to_thread(work)
    assert task.progress_detail is not None
    assert task.progress_detail.rate_bps == 2 * MB
