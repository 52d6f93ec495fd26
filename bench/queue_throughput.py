"""Queue overhead: N no-op tasks through the persisted queue, next to Huey's SQLite queue.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/queue_throughput.py            # 10,000 tasks, 4 workers, 3 rounds
    .venv/bin/python bench/queue_throughput.py -n 2000 --rounds 5
    .venv/bin/python bench/queue_throughput.py --only FULL   # ai-admin's FULL rows, and Huey's

Each round runs every contender once, in a fresh database, alternating, so a noisy machine
hurts them alike; the table shows medians over rounds. Every contender commits every state
change: ai-admin writes pending, running and completed for each task; Huey writes the enqueue
and the dequeue. "FULL" fsyncs every commit (Huey's default); "NORMAL" (ai-admin's default)
survives a crash of the process (kill -9) but not of the machine. Two ratios: to Huey at its
default, and to Huey at the same synchronous level; much of the first is the fsync.

ai-admin commits its group commits on the event loop or on a writer thread of their own
(``SqliteStore(writer=...)``); the "writer thread" rows measure the second.

The engine runs on uvloop, as in the agent (``ai-admin serve``), and on asyncio's own loop, which
a program using the Python API gets unless it chooses otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_admin.cli import loop
from ai_admin.config import Settings
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import DockerTask, TaskType
from ai_admin.queue.sqlite_store import SqliteStore, Writer


@dataclass
class RunResult:
    enqueue_per_s: float
    end_to_end_per_s: float
    p50_ms: float
    p99_ms: float


def _result(n: int, t0: float, t_enqueued: float, t_done: float, lat_s: list[float]) -> RunResult:
    lat = sorted(lat_s)
    return RunResult(
        enqueue_per_s=n / (t_enqueued - t0),
        end_to_end_per_s=n / (t_done - t0),
        p50_ms=1000 * lat[len(lat) // 2],
        p99_ms=1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
    )


# -- ai-admin ------------------------------------------------------------------------------------


async def _noop(ctx: TaskContext) -> dict[str, Any]:
    return {}


async def _ai_admin(
    n: int, workers: int, producers: int, db: Path, sync: str, writer: Writer
) -> RunResult:
    settings = Settings(data_dir=db.parent, max_concurrent=workers, max_queue_size=n + 1)
    store = SqliteStore(db, synchronous="FULL" if sync == "FULL" else "NORMAL", writer=writer)
    submitted: dict[str, float] = {}
    latencies: list[float] = []
    async with QueueEngine(store, {TaskType.PULL: _noop}, settings) as engine:
        events = engine.subscribe()

        async def produce(start: int) -> None:
            for i in range(start, n, producers):
                t = time.perf_counter()
                sub = await engine.submit(DockerTask(task_type=TaskType.PULL, params={"i": i}))
                submitted[sub.task_id] = t

        async def collect() -> None:
            while len(latencies) < n:
                event = await events.next()
                if event is not None and event.status == "completed":
                    done = time.perf_counter()
                    latencies.append(done - submitted.get(event.task_id, done))

        collector = asyncio.create_task(collect())
        t0 = time.perf_counter()
        await asyncio.gather(*(produce(p) for p in range(producers)))
        t_enqueued = time.perf_counter()
        await collector
        t_done = time.perf_counter()
        events.close()
    return _result(n, t0, t_enqueued, t_done, latencies)


# -- Huey ----------------------------------------------------------------------------------------


def _huey(n: int, workers: int, producers: int, db: Path, sync: str) -> RunResult:
    from huey import Huey
    from huey.signals import SIGNAL_COMPLETE
    from huey.storage import SqliteStorage

    class Storage(SqliteStorage):  # type: ignore[misc]
        """Huey's SQLite storage; its own choices are fsync on (FULL) or off, not NORMAL."""

        def _create_connection(self) -> Any:
            conn = super()._create_connection()
            conn.execute(f"PRAGMA synchronous={sync}")
            return conn

    huey = Huey("bench", storage_class=Storage, filename=str(db))
    submitted: dict[str, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    all_done = threading.Event()

    @huey.task()  # type: ignore[misc]
    def noop(i: int) -> None:
        return None

    @huey.signal(SIGNAL_COMPLETE)  # type: ignore[misc]
    def completed(signal: str, task: Any) -> None:
        done = time.perf_counter()
        with lock:
            latencies.append(done - submitted.get(task.id, done))
            if len(latencies) >= n:
                all_done.set()

    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", periodic=False, initial_delay=0.001, max_delay=0.01
    )
    consumer.start()

    def produce(start: int) -> None:
        for i in range(start, n, producers):
            t = time.perf_counter()
            result = noop(i)
            with lock:
                submitted[result.id] = t

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t_enqueued = time.perf_counter()
    all_done.wait()
    t_done = time.perf_counter()
    consumer.stop(graceful=True)
    huey.storage.close()
    return _result(n, t0, t_enqueued, t_done, latencies)


# -- the table -----------------------------------------------------------------------------------


Runner = Callable[[Path], RunResult]


def _table(n: int, workers: int, producers: int, rounds: int, only: str | None) -> None:
    def engine(
        sync: str,
        run: Callable[[Coroutine[Any, Any, RunResult]], RunResult],
        writer: Writer = "loop",
    ) -> Runner:
        return lambda db: run(_ai_admin(n, workers, producers, db, sync, writer))

    def huey(sync: str) -> Runner:
        return lambda db: _huey(n, workers, producers, db, sync)

    # name: (run, synchronous level)
    contenders: dict[str, tuple[Runner, str]] = {
        "ai-admin NORMAL, uvloop": (engine("NORMAL", loop.run), "NORMAL"),
        "ai-admin NORMAL, uvloop, writer thread": (
            engine("NORMAL", loop.run, "thread"),
            "NORMAL",
        ),
        "ai-admin NORMAL, asyncio": (engine("NORMAL", asyncio.run), "NORMAL"),
        "ai-admin FULL, uvloop": (engine("FULL", loop.run), "FULL"),
        "ai-admin FULL, uvloop, writer thread": (engine("FULL", loop.run, "thread"), "FULL"),
        "huey SqliteHuey FULL": (huey("FULL"), "FULL"),
        "huey SqliteHuey NORMAL": (huey("NORMAL"), "NORMAL"),
    }
    if only:  # Huey's rows stay: the ratios are to them
        contenders = {k: v for k, v in contenders.items() if only in k or k.startswith("huey")}
    results: dict[str, list[RunResult]] = {name: [] for name in contenders}
    for r in range(rounds):
        for name, (run, _) in contenders.items():
            with tempfile.TemporaryDirectory() as tmp:
                results[name].append(run(Path(tmp) / "queue.db"))
        print(f"  {producers} producer(s): round {r + 1}/{rounds} done", flush=True)

    def med(name: str, field: str) -> float:
        return statistics.median(getattr(x, field) for x in results[name])

    def rate(name: str) -> float:
        return med(name, "end_to_end_per_s")

    print(
        f"\n{n} no-op tasks, {workers} workers, {producers} producer(s), median of {rounds} rounds"
    )
    columns = ("enqueue/s", "tasks/s", "p50 ms", "p99 ms", "vs huey", "same sync")
    widths = (11, 10, 9, 9, 9, 11)
    header = f"{'queue':<40}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    print(header)
    print("-" * len(header))
    for name, (_, sync) in contenders.items():
        e2e = rate(name)
        print(
            f"{name:<40}{med(name, 'enqueue_per_s'):>11.0f}{e2e:>10.0f}"
            f"{med(name, 'p50_ms'):>9.1f}{med(name, 'p99_ms'):>9.1f}"
            f"{e2e / rate('huey SqliteHuey FULL'):>8.2f}x"
            f"{e2e / rate(f'huey SqliteHuey {sync}'):>10.2f}x"
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="tasks per run")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--producers",
        default="1,16",
        help="concurrent submitters, one table per value (a script, or many HTTP clients)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="run only the ai-admin rows whose name holds this text")
    args = parser.parse_args()
    logging.getLogger("huey").setLevel(logging.ERROR)
    from loguru import logger

    logger.remove()
    for producers in (int(p) for p in args.producers.split(",")):
        _table(args.n, args.workers, producers, args.rounds, args.only)


if __name__ == "__main__":
    main()
