"""Orchestration under load: many schedules firing at once, and what it costs everyone else.

    .venv/bin/python bench/orchestration.py                 # 1,000 schedules, 60 s, 3 rounds
    .venv/bin/python bench/orchestration.py --seconds 10 --rounds 2 --schedules 200

A queue with no-op executors (no Docker), its SQLite store in a temporary directory, on uvloop
as in the agent. Each round:

- quiet: no schedule; an unrelated task is submitted every 20 ms and each submit's latency
  (until it is durable and queued) is measured;
- busy: ``--schedules`` schedules each firing every second (their phases spread over the
  second or so it takes to make them, as schedules made one after another are), for
  ``--seconds``, and ``--batches`` serial batches of 10 no-op tasks submitted one after the
  other at the start (they run through the queue's line while the schedules fire), with the
  same unrelated submits beside them. A firing's lateness is the time from when it was due
  (APScheduler's scheduled run time) to the submit of its task.

The table shows medians over rounds of each round's p50 and p99, the firings made out of those
due (a firing skipped or coalesced shows there), and the unrelated submits' latency next to the
quiet figure, each batch's submit and how long all the batches took to run. Targets (issue 16):
p99 lateness under 1 s, unrelated submit latency at most twice the quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from loguru import logger

from ai_admin.agent import settle_heap
from ai_admin.cli import loop
from ai_admin.config import Settings
from ai_admin.python_api import TaskQueue
from ai_admin.queue.engine import Submission
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import DockerTask, TaskType
from ai_admin.queue.sqlite_store import SqliteStore

UNRELATED_EVERY_S = 0.02


async def _noop(ctx: TaskContext) -> dict[str, Any]:
    return {}


class MeasuredQueue(TaskQueue):
    """A queue that notes when each firing was due and when its submit came."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.due: dict[str, float] = {}  # each schedule's firing due and not yet submitted
        self.lateness_s: list[float] = []

    def watch_firings(self) -> None:
        def submitted(event: JobSubmissionEvent) -> None:
            # Due again before its last firing began: it folds into that one (late since then).
            self.due.setdefault(event.job_id, max(event.scheduled_run_times).timestamp())

        self.scheduler.apscheduler.add_listener(submitted, EVENT_JOB_SUBMITTED)

    async def submit(self, task: DockerTask) -> Submission:
        due = None if task.schedule_id is None else self.due.pop(task.schedule_id, None)
        if due is not None:
            self.lateness_s.append(time.time() - due)
        return await super().submit(task)


@dataclass
class Round:
    lateness_s: list[float] = field(default_factory=list)
    firings: int = 0
    due: int = 0
    submit_s: list[float] = field(default_factory=list)
    batch_submit_s: list[float] = field(default_factory=list)
    batches_done_s: float = float("nan")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def _unrelated(queue: TaskQueue, seconds: float, into: list[float]) -> None:
    """A task of nobody's schedule every 20 ms; each submit's latency."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        task = DockerTask(task_type=TaskType.BUILD, params={"dockerfile": f"FROM scratch #{n}"})
        t0 = time.perf_counter()
        await queue.submit(task)
        into.append(time.perf_counter() - t0)
        n += 1
        await asyncio.sleep(UNRELATED_EVERY_S)


async def _round(n_schedules: int, n_batches: int, seconds: float, directory: Path) -> Round:
    settings = Settings(
        data_dir=directory,
        max_concurrent=8,
        max_queue_size=100_000,
        housekeeping_interval_s=None,
        stats_snapshot_interval_s=None,
        log_level="WARNING",
    )
    store = SqliteStore(directory / "bench.db")
    queue = MeasuredQueue(store, dict.fromkeys(TaskType, _noop), settings)
    result = Round()
    await queue.start()
    settle_heap()  # as the agent's doors do once it has started
    try:
        queue.watch_firings()
        for i in range(n_schedules):
            task = DockerTask(task_type=TaskType.PULL, params={"image_name": f"bench/s{i}"})
            await queue.schedule(task, name=f"s{i}", interval_s=1)
        started = time.time()
        batches = asyncio.create_task(batches_load(queue, n_batches, result))
        await _unrelated(queue, seconds, result.submit_s)
        elapsed = time.time() - started
        await batches
        views = await queue.list_schedules()
        for view in views:
            await queue.pause_schedule(view.schedule_id)
        result.lateness_s = list(queue.lateness_s)
        result.firings = len(queue.lateness_s)
        result.due = int(n_schedules * elapsed) if n_schedules else 0
    finally:
        await queue.close()
    return result


async def batches_load(queue: TaskQueue, n_batches: int, into: Round) -> None:
    """``n_batches`` serial batches of 10 no-op tasks, submitted one after the other: each
    submit's latency, and the time until the last batch has finished."""
    started = time.perf_counter()
    ids = []
    for b in range(n_batches):
        tasks = [
            DockerTask(task_type=TaskType.PULL, params={"image_name": f"bench/b{b}-{t}"})
            for t in range(10)
        ]
        t0 = time.perf_counter()
        ids.append((await queue.submit_batch(tasks, name=f"b{b}")).batch_id)
        into.batch_submit_s.append(time.perf_counter() - t0)
    for batch_id in ids:
        await queue.wait_for_batch(batch_id)
    if ids:
        into.batches_done_s = time.perf_counter() - started


def run(n_schedules: int, n_batches: int, seconds: float, rounds: int) -> None:
    logger.remove()
    # A firing late by more than its grace time would be skipped with a warning per job: the
    # table counts firings made against those due instead.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    quiet: list[Round] = []
    busy: list[Round] = []
    for r in range(rounds):
        for schedules, batches, into in ((0, 0, quiet), (n_schedules, n_batches, busy)):
            with tempfile.TemporaryDirectory() as tmp:
                into.append(loop.run(_round(schedules, batches, seconds, Path(tmp))))
        q, b = _pct(quiet[-1].submit_s, 0.99) * 1000, _pct(busy[-1].submit_s, 0.99) * 1000
        late = _pct(busy[-1].lateness_s, 0.99) * 1000
        print(
            f"  round {r + 1}/{rounds}: unrelated submit p99 {q:.2f} ms quiet, {b:.2f} ms busy "
            f"({b / q:.2f}x); firing lateness p99 {late:.1f} ms",
            flush=True,
        )

    def median(rows: list[Round], pick: Any) -> float:
        return statistics.median(pick(row) for row in rows)

    quiet_p50 = median(quiet, lambda r: _pct(r.submit_s, 0.5)) * 1000
    quiet_p99 = median(quiet, lambda r: _pct(r.submit_s, 0.99)) * 1000
    busy_p50 = median(busy, lambda r: _pct(r.submit_s, 0.5)) * 1000
    busy_p99 = median(busy, lambda r: _pct(r.submit_s, 0.99)) * 1000
    late_p50 = median(busy, lambda r: _pct(r.lateness_s, 0.5)) * 1000
    late_p99 = median(busy, lambda r: _pct(r.lateness_s, 0.99)) * 1000
    made = median(busy, lambda r: r.firings / max(r.due, 1)) * 100
    print()
    print(f"{n_schedules} schedules firing every second for {seconds:g} s and {n_batches} "
          f"batches of 10 tasks, no-op executors, medians of {rounds} round(s)")  # fmt: skip
    header = f"{'':44} {'p50':>10} {'p99':>10}"
    print(header)
    print("-" * len(header))
    print(f"{'firing lateness (ms)':44} {late_p50:>10.1f} {late_p99:>10.1f}")
    print(f"{'unrelated submit, quiet (ms)':44} {quiet_p50:>10.2f} {quiet_p99:>10.2f}")
    print(f"{'unrelated submit, with the schedules (ms)':44} {busy_p50:>10.2f} {busy_p99:>10.2f}")
    print(f"{'  ratio to quiet':44} {busy_p50 / quiet_p50:>10.2f} {busy_p99 / quiet_p99:>10.2f}")
    print(f"{'firings made / due (%)':44} {made:>10.1f}")
    if n_batches:
        batch_p50 = median(busy, lambda r: _pct(r.batch_submit_s, 0.5)) * 1000
        batch_p99 = median(busy, lambda r: _pct(r.batch_submit_s, 0.99)) * 1000
        done = median(busy, lambda r: r.batches_done_s)
        print(f"{'batch_submit of 10 tasks (ms)':44} {batch_p50:>10.2f} {batch_p99:>10.2f}")
        print(f"{f'all {n_batches} batches finished after (s)':44} {done:>10.2f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=1_000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run(args.schedules, args.batches, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
