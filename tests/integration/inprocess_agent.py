"""The HTTP app in this process, around an agent whose queue runs fake executors.

For the tests that send thousands of requests (fuzzing): the same ``create_app`` the real
``ai-admin serve`` uses, on a real socket (aiohttp's ``TestServer``), with a real SQLite store in
a temporary directory, but executors that finish at once instead of calling Docker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent_process import OPERATOR_TOKEN, READ_ONLY_TOKEN
from aiohttp.test_utils import TestServer

from ai_admin.agent import Agent
from ai_admin.config import Settings
from ai_admin.http.app import create_app
from ai_admin.http.auth import Tokens
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore
from ai_admin.queue.task_queue import TaskQueue


async def instant(ctx: TaskContext) -> dict[str, Any]:
    """A fake executor: one step, some progress, done."""
    await ctx.step(TaskStatus.VALIDATING)
    ctx.progress(50.0)
    ctx.log(f"fake {ctx.task_type.value} done")
    return {"fake": True}


@asynccontextmanager
async def serve_agent(
    data_dir: Path, *, executors: dict[TaskType, Any] | None = None, **settings: Any
) -> AsyncIterator[tuple[Agent, str]]:
    """(the agent, its base URL); everything is closed on exit."""
    values: dict[str, Any] = {"data_dir": data_dir, "shutdown_grace_s": 0.5, **settings}
    config = Settings(**values)
    queue = TaskQueue(
        store=SqliteStore(config.db_path),
        executors=executors or dict.fromkeys(TaskType, instant),
        settings=config,
    )
    agent = Agent(config, queue=queue)
    server = TestServer(create_app(agent, Tokens(OPERATOR_TOKEN, (READ_ONLY_TOKEN,))))
    await server.start_server()
    try:
        yield agent, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        await agent.stop()
