"""The HTTP app in this process, around a real agent: ``serve_agent``.

The same ``create_app`` the real ``ai-admin serve`` uses (``/mcp`` included), on a real socket
(aiohttp's ``TestServer``), with a real SQLite store in a temporary directory. By default the
executors finish at once instead of calling Docker, for the tests that send thousands of
requests (fuzzing); ``docker=True`` runs the real Docker executors (the MCP tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_process import OPERATOR_TOKEN, READ_ONLY_TOKEN
from aiohttp.test_utils import TestServer

from ai_admin.agent import Agent
from ai_admin.config import Settings
from ai_admin.docker.executors import docker_executors
from ai_admin.http.app import create_app
from ai_admin.http.auth import Tokens
from ai_admin.python_api import TaskQueue
from ai_admin.queue.executor import ExecutorMap, TaskContext
from ai_admin.queue.models import TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore

DEFAULT_TOKENS = Tokens(OPERATOR_TOKEN, (READ_ONLY_TOKEN,))


async def instant(ctx: TaskContext) -> dict[str, Any]:
    """A fake executor: one step, some progress, done."""
    await ctx.step(TaskStatus.VALIDATING)
    ctx.progress(50.0)
    ctx.log(f"fake {ctx.task_type.value} done")
    return {"fake": True}


@dataclass(frozen=True)
class Served:
    agent: Agent
    url: str  # the app's base URL, without a trailing slash


@asynccontextmanager
async def serve_agent(
    data_dir: Path,
    *,
    executors: ExecutorMap | None = None,
    docker: bool = False,
    tokens: Tokens = DEFAULT_TOKENS,
    start: bool = False,
    **settings: Any,
) -> AsyncIterator[Served]:
    """The agent and its base URL; everything is closed on exit.

    ``executors`` (fake ones finishing at once by default, the Docker ones with ``docker``);
    ``start`` starts the agent before serving, as ``ai-admin serve`` does (otherwise its queue
    starts on first use); ``settings`` override the defaults (``shutdown_grace_s`` 0.5 s).
    """
    values: dict[str, Any] = {"data_dir": data_dir, "shutdown_grace_s": 0.5, **settings}
    config = Settings(**values)
    if executors is None:
        executors = docker_executors(config) if docker else dict.fromkeys(TaskType, instant)
    queue = TaskQueue(store=SqliteStore(config.db_path), executors=executors, settings=config)
    agent = Agent(config, queue=queue)
    if start:
        await agent.start()
    server = TestServer(create_app(agent, tokens))
    try:
        await server.start_server()
        yield Served(agent, str(server.make_url("")).rstrip("/"))
    finally:
        await server.close()
        await agent.stop()
