"""``/mcp`` in the agent's aiohttp app, with a queue whose tasks run until cancelled.

The tokens and the Docker work are the integration tests' business; here: a session belongs to
the token that opened it, and closing the app ends calls that are still waiting for a task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from aiohttp.test_utils import TestServer
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.transport_security import TransportSecurityMiddleware
from mcp_messages import ACCEPT, INITIALIZE
from starlette.requests import Request

from ai_admin.agent import Agent
from ai_admin.config import Settings
from ai_admin.errors import ErrorCode
from ai_admin.http.app import create_app
from ai_admin.http.auth import Tokens
from ai_admin.http.mcp_route import _SERVICE, mount_mcp
from ai_admin.mcp import MCP_METHODS
from ai_admin.python_api import TaskQueue
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskType

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


@asynccontextmanager
async def serving(tmp_path: Path, **options: Any) -> AsyncIterator[App]:
    settings = Settings(data_dir=tmp_path, shutdown_grace_s=0.2, **options)
    agent = Agent(
        settings, TaskQueue(executors=dict.fromkeys(TaskType, forever), settings=settings)
    )
    await agent.queue.start()
    tokens = Tokens(OPERATOR, (READER,))
    web_app = create_app(agent, tokens)
    mount_mcp(web_app, agent)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    try:
        yield App(agent, server)
    finally:
        await server.close()
        await agent.stop()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with serving(tmp_path) as running:
        yield running


async def test_a_session_answers_only_the_token_that_opened_it(app: App) -> None:
    async with _http(OPERATOR) as mine, _http(READER) as theirs:
        opened = await mine.post(app.url, json=INITIALIZE, headers=ACCEPT)
        assert opened.status_code == 200
        session = {**ACCEPT, "Mcp-Session-Id": opened.headers["Mcp-Session-Id"]}
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        # A valid token, but not the one that opened the session: as if it did not exist.
        assert (await theirs.post(app.url, json=ping, headers=session)).status_code == 404
        assert (await mine.post(app.url, json=ping, headers=session)).status_code == 200


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_closing_the_app_ends_a_call_still_waiting_for_its_task(app: App, mode: str) -> None:
    events = app.agent.queue.subscribe()  # before the call: its start is not missed

    async def close_once_running() -> float:
        async for event in events:
            if event.status == "running":
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


async def test_a_token_holds_at_most_its_sessions_and_gets_room_back_when_one_ends(
    tmp_path: Path,
) -> None:
    async with (
        serving(tmp_path, max_mcp_sessions_per_token=2) as app,
        _http(OPERATOR) as mine,
        _http(READER) as theirs,
    ):
        opened = [await mine.post(app.url, json=INITIALIZE, headers=ACCEPT) for _ in range(2)]
        assert [o.status_code for o in opened] == [200, 200]
        refused = await mine.post(app.url, json=INITIALIZE, headers=ACCEPT)
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == ErrorCode.REQUEST_LIMIT_REACHED
        assert error["details"] == {"limit": 2, "setting": "max_mcp_sessions_per_token"}
        # The limit is per token: another token still opens one.
        assert (await theirs.post(app.url, json=INITIALIZE, headers=ACCEPT)).status_code == 200
        # Requests inside an open session are not new sessions.
        session = {**ACCEPT, "Mcp-Session-Id": opened[0].headers["Mcp-Session-Id"]}
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        assert (await mine.post(app.url, json=ping, headers=session)).status_code == 200
        assert (await mine.delete(app.url, headers=session)).status_code == 200
        assert (await mine.post(app.url, json=INITIALIZE, headers=ACCEPT)).status_code == 200


async def test_a_sessionless_exchange_counts_whatever_session_id_it_carries(
    tmp_path: Path,
) -> None:
    # Regression: a request of the sessionless protocol with a made-up Mcp-Session-Id was
    # taken for one inside a session and never counted, so any number could be held open.
    async with serving(tmp_path, max_mcp_sessions_per_token=2) as app, _http(OPERATOR) as mine:
        for _ in range(2):
            opened = await mine.post(app.url, json=INITIALIZE, headers=ACCEPT)
            assert opened.status_code == 200
        modern = {**ACCEPT, "MCP-Protocol-Version": "2026-07-28", "Mcp-Session-Id": "made-up"}
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        refused = await mine.post(app.url, json=ping, headers=modern)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == ErrorCode.REQUEST_LIMIT_REACHED


def test_the_sdk_counts_sessions_where_the_limit_reads_them(app: App) -> None:
    """The per-token limit reads the SDK's private record of who opened each session."""
    service = app.server.app[_SERVICE] if app.server.app is not None else None
    assert service is not None
    assert isinstance(service.manager._session_owners, dict)


def _request(host: str, origin: str | None = None) -> Request:
    headers = [(b"host", host.encode()), (b"content-type", b"application/json")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return Request({"type": "http", "method": "POST", "headers": headers, "path": "/mcp"})


async def test_the_sdk_dns_rebinding_protection_is_on_with_the_app_rules(tmp_path: Path) -> None:
    options = {
        "allowed_hosts": ["agent.example.org"],
        "allowed_origins": ["https://dash.example.org"],
    }
    async with serving(tmp_path, **options) as app:
        assert app.server.app is not None
        security = app.server.app[_SERVICE].manager.security_settings
        assert security is not None
        assert security.enable_dns_rebinding_protection
        check = TransportSecurityMiddleware(security)
        for host in ("127.0.0.1:8060", "localhost", "[::1]:1", "agent.example.org:443"):
            assert await check.validate_request(_request(host), is_post=True) is None, host
        foreign = await check.validate_request(_request("evil.example:8060"), is_post=True)
        assert foreign is not None
        assert foreign.status_code == 421
        allowed = _request("localhost:8060", "https://dash.example.org")
        assert await check.validate_request(allowed, is_post=True) is None
        other = await check.validate_request(_request("localhost", "http://evil.example"), True)
        assert other is not None
        assert other.status_code == 403
        # What the SDK allows, the app's guard lets through to it.
        async with _http(OPERATOR) as http:
            headers = {**ACCEPT, "Host": "agent.example.org", "Origin": "https://dash.example.org"}
            assert (await http.post(app.url, json=INITIALIZE, headers=headers)).status_code == 200
