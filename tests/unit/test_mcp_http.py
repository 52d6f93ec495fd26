"""``/mcp`` in the agent's aiohttp app, with a queue whose tasks run until cancelled.

The tokens and the Docker work are the integration tests' business; here: a session belongs to
the token that opened it, and closing the app ends calls that are still waiting for a task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from aiohttp.test_utils import TestServer
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from ai_admin.agent import Agent
from ai_admin.config import Settings
from ai_admin.http.app import create_app
from ai_admin.http.auth import Tokens
from ai_admin.mcp import MCP_METHODS
from ai_admin.mcp.http import mount_mcp
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskType
from ai_admin.queue.task_queue import TaskQueue

OPERATOR = "operator-token"
READER = "read-only-token"
WAIT_S = 15.0
CLOSE_S = 5.0


async def forever(ctx: TaskContext) -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


class App:
    def __init__(self, agent: Agent, server: TestServer) -> None:
        self.agent = agent
        self.server = server
        self.url = str(server.make_url("/mcp"))

    def client(self, http: httpx2.AsyncClient, mode: str = "auto") -> Client:
        transport = streamable_http_client(self.url, http_client=http)
        return Client(transport, mode=mode, read_timeout_seconds=WAIT_S)


def _http(token: str) -> httpx2.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx2.AsyncClient(headers=headers, trust_env=False, timeout=WAIT_S)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    settings = Settings(data_dir=tmp_path, shutdown_grace_s=0.2)
    agent = Agent(
        settings, TaskQueue(executors=dict.fromkeys(TaskType, forever), settings=settings)
    )
    await agent.queue.start()
    tokens = Tokens(OPERATOR, (READER,))
    web_app = create_app(agent, tokens)
    mount_mcp(web_app, agent)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    yield App(agent, server)
    await server.close()
    await agent.stop()


async def test_a_session_answers_only_the_token_that_opened_it(app: App) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    async with _http(OPERATOR) as mine, _http(READER) as theirs:
        opened = await mine.post(app.url, json=initialize, headers=accept)
        assert opened.status_code == 200
        session = {**accept, "Mcp-Session-Id": opened.headers["Mcp-Session-Id"]}
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        # A valid token, but not the one that opened the session: as if it did not exist.
        assert (await theirs.post(app.url, json=ping, headers=session)).status_code == 404
        assert (await mine.post(app.url, json=ping, headers=session)).status_code == 200


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_closing_the_app_ends_a_call_still_waiting_for_its_task(app: App, mode: str) -> None:
    events = app.agent.queue.subscribe()  # before the call: its start is not missed

    async def close_once_running() -> float:
        async for event in events:
            if event["status"] == "running":
                break
        events.close()
        started = time.monotonic()
        await app.server.close()
        return time.monotonic() - started

    closing = asyncio.create_task(close_once_running())
    # The client sees its stream end without an answer: an error, but not a hang.
    with anyio.fail_after(WAIT_S), pytest.raises(ExceptionGroup):
        async with _http(OPERATOR) as http, app.client(http, mode) as client:
            await client.call_tool("docker_pull", {"image_name": "app", "wait": True})
    assert await closing < CLOSE_S


async def test_mounting_again_changes_nothing(app: App) -> None:
    web_app = app.server.app
    assert web_app is not None
    mount_mcp(web_app, app.agent)  # e.g. create_app mounted it already
    routes = [r for r in web_app.router.routes() if r.resource and r.resource.canonical == "/mcp"]
    assert sorted(r.method for r in routes) == sorted(MCP_METHODS)  # once each
