"""A queue killed with SIGKILL loses nothing: the restarted engine accounts for every task,
re-queues the ones that were running (and says so), and keeps the waiting ones in order."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from ai_admin.config import Settings
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore, Writer

WORKER = Path(__file__).with_name("crash_worker.py")
TASKS = 10
WAIT_S = 60.0
# Runs the worker with a store that commits on its writer thread.
WRITER_THREAD = """
import functools, runpy, sys
from ai_admin.queue import sqlite_store
sqlite_store.SqliteStore = functools.partial(sqlite_store.SqliteStore, writer="thread")
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AI_ADMIN_"):
            monkeypatch.delenv(name)


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    yield lines
    logger.remove(sink)


async def _run_worker_until_ready(
    db_path: Path, writer: Writer
) -> tuple[asyncio.subprocess.Process, list[str]]:
    boot = ["-c", WRITER_THREAD] if writer == "thread" else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *boot,
        str(WORKER),
        str(db_path),
        str(TASKS),
        stdout=asyncio.subprocess.PIPE,
        cwd=db_path.parent,
        env=dict(os.environ),
    )
    assert proc.stdout is not None
    async with asyncio.timeout(WAIT_S):
        while line := (await proc.stdout.readline()).decode():
            if line.startswith("READY "):
                return proc, json.loads(line.removeprefix("READY "))
    raise AssertionError(f"the worker exited with {await proc.wait()} before it was ready")


@pytest.mark.parametrize("writer", ["loop", "thread"])
async def test_tasks_survive_sigkill(
    tmp_path: Path, warnings_logged: list[str], writer: Writer
) -> None:
    db_path = tmp_path / "crash.db"
    proc: asyncio.subprocess.Process | None = None
    try:
        proc, ids = await _run_worker_until_ready(db_path, writer)
        assert len(ids) == TASKS
        os.kill(proc.pid, signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), WAIT_S) == -signal.SIGKILL
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()

    starts: list[str] = []

    async def complete(ctx: TaskContext) -> dict[str, Any]:
        starts.append(ctx.task_id)
        return {"ok": True}

    settings = Settings(data_dir=tmp_path, max_concurrent=1)
    engine = QueueEngine(
        SqliteStore(db_path, writer=writer), dict.fromkeys(TaskType, complete), settings
    )
    try:
        engine.pause_queue()  # look at the recovered queue before anything runs
        await engine.start()

        recovered = {i: await engine.get_task(i) for i in ids}
        assert all(t is not None for t in recovered.values()), "a task was lost"
        requeued = [i for i, t in recovered.items() if t and "Re-queued" in t.current_step]
        assert requeued == ids[:2]  # the two that were running
        assert all(t is not None and t.status is TaskStatus.PENDING for t in recovered.values())
        assert [t.id for t in engine.pending_tasks()] == ids  # submission order kept
        positions = [engine.queue_position(t) for t in recovered.values() if t is not None]
        assert positions == list(range(1, TASKS + 1))
        assert any(
            "re-queued 2 task(s)" in line and ids[0] in line and ids[1] in line
            for line in warnings_logged
        ), warnings_logged

        engine.resume_queue()
        async with asyncio.timeout(WAIT_S):
            await engine.join()
        assert starts == ids
        for task_id in ids:
            task = await engine.get_task(task_id)
            assert task is not None
            assert task.status is TaskStatus.COMPLETED
        stats = await engine.get_queue_stats()
        assert stats["distributions"]["status"] == {"completed": TASKS}
        assert stats["counters"]["enqueued"] == TASKS
    finally:
        await engine.close(grace_s=0)
