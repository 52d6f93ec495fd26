"""Run by ``test_crash_recovery.py`` in a subprocess: a queue with work running and waiting.

Usage: ``python crash_worker.py DB_PATH [TASKS]``. Builds a ``QueueEngine`` on ``DB_PATH`` with
``max_concurrent=2`` and an executor that never finishes, submits ``TASKS`` tasks (10 by
default), waits until two are recorded as running, prints ``READY <json list of ids in submit
order>`` and then waits forever, for the test to kill it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ai_admin.config import Settings
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import DockerTask, TaskType
from ai_admin.queue.sqlite_store import SqliteStore


async def _forever(ctx: TaskContext) -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def main(db_path: Path, count: int) -> None:
    settings = Settings(data_dir=db_path.parent, max_concurrent=2)
    engine = QueueEngine(SqliteStore(db_path), dict.fromkeys(TaskType, _forever), settings)
    await engine.start()
    events = engine.subscribe()
    ids = []
    for i in range(count):
        task = DockerTask(task_type=TaskType.PULL, params={"image_name": f"crash/app{i}"})
        ids.append(await engine.add_task(task))
    # "running" is announced only once it is committed: then the database says running.
    running: set[str] = set()
    while len(running) < 2:
        event = await events.next()
        if event is not None and event.event == "status" and event.status == "running":
            running.add(event.task_id)
    print("READY " + json.dumps(ids), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10))
