"""The MCP doors end to end, with the SDK's client: ``ai-admin mcp`` over stdio (a subprocess
running a whole agent) and ``/mcp`` over streamable HTTP (the agent's aiohttp app on a free
port, behind its tokens). Docker work is real: a pull from the open test registry and a push
refused by the htpasswd one.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import docker
import httpx2
import mcp.types as types
import pytest
from dockerenv import (
    AuthRegistry,
    ImageCleanup,
    only_in_registry,
)
from inprocess_agent import serve_agent
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_messages import ACCEPT, INITIALIZE

from ai_admin.commands import REGISTRY
from ai_admin.http.auth import Tokens
from ai_admin.mcp import MCP_PATH
from ai_admin.mcp.tools import WAIT_KEYS

OPERATOR = "operator-token-for-mcp-tests"
READER = "read-only-token-for-mcp-tests"
CANARY = "canary-password-9f3e1d"  # a wrong password that must never come back
CALL_TIMEOUT_S = 120.0
# Registers the MCP commands on the real CLI app, whether or not main.py does already.
CLI = (
    "from ai_admin.cli.main import app; "
    "from ai_admin.cli.mcp_commands import register; register(app); app()"
)


@dataclass
class Target:
    """Where a test's MCP client connects: an ``ai-admin mcp`` subprocess or the HTTP app."""

    kind: str
    data_dir: Path
    url: str = ""
    mode: str = "auto"  # the client's protocol: "auto" (2026-07-28) or "legacy" (handshake)

    @property
    def stderr_path(self) -> Path:
        return self.data_dir / "stderr.log"

    @asynccontextmanager
    async def session(self, token: str = OPERATOR) -> AsyncIterator[Client]:
        if self.kind == "stdio":
            env = {k: v for k, v in os.environ.items() if k == "DOCKER_HOST"}
            params = StdioServerParameters(
                command=sys.executable,
                args=["-c", CLI, "mcp", "--data-dir", str(self.data_dir)],
                env=env,
                cwd=self.data_dir,
            )
            with self.stderr_path.open("a") as errlog:
                transport = stdio_client(params, errlog=errlog)
                async with Client(
                    transport, mode=self.mode, read_timeout_seconds=CALL_TIMEOUT_S
                ) as client:
                    yield client
            return
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx2.AsyncClient(headers=headers, trust_env=False, timeout=CALL_TIMEOUT_S) as http,
            Client(
                streamable_http_client(self.url, http_client=http),
                mode=self.mode,
                read_timeout_seconds=CALL_TIMEOUT_S,
            ) as client,
        ):
            yield client


@asynccontextmanager
async def http_agent(data_dir: Path) -> AsyncIterator[str]:
    """The agent's aiohttp app (``/mcp`` included) with the Docker executors, started, on a
    free port; yields the MCP URL."""
    tokens = Tokens(OPERATOR, (READER,))
    async with serve_agent(
        data_dir, docker=True, tokens=tokens, start=True, max_retries=0, shutdown_grace_s=1
    ) as served:
        yield served.url + MCP_PATH


@pytest.fixture(params=["stdio", "stdio-legacy", "http", "http-legacy"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    """Each transport, with the 2026-07-28 protocol and with the handshake era's (what most
    assistants speak today)."""
    kind, _, legacy = str(request.param).partition("-")
    mode = legacy or "auto"
    if kind == "stdio":
        yield Target(kind, tmp_path, mode=mode)
        return
    async with http_agent(tmp_path) as url:
        yield Target(kind, tmp_path, url, mode=mode)


@pytest.fixture
async def http_url(tmp_path: Path) -> AsyncIterator[str]:
    async with http_agent(tmp_path) as url:
        yield url


class Progress:
    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def _error(result: types.CallToolResult) -> dict[str, Any]:
    assert result.is_error, _text(result)
    error: dict[str, Any] = result.structured_content["error"]
    return error


# --- tools, validation, resources and the prompt, over both transports -----------------------


async def test_tools_match_the_registry_and_calls_answer(target: Target) -> None:
    async with target.session() as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert list(listed) == REGISTRY.names()
        for command in REGISTRY:
            tool = listed[command.name]
            properties = tool.input_schema["properties"]
            schema = {k: v for k, v in properties.items() if k not in WAIT_KEYS}
            assert {**tool.input_schema, "properties": schema} == command.schema()
            assert tool.annotations is not None
            assert tool.annotations.read_only_hint is command.read_only
            assert tool.annotations.destructive_hint is command.destructive
            assert tool.annotations.idempotent_hint is command.idempotent
            assert tool.annotations.open_world_hint is command.name.startswith("docker_")
        assert {n for n, t in listed.items() if "wait" in t.input_schema["properties"]} == {
            "docker_build",
            "docker_push",
            "docker_pull",
        }

        status = await client.call_tool("queue_status", {})
        assert not status.is_error
        assert status.structured_content["success"] is True
        assert status.structured_content["data"]["summary"]["running"] == 0

        invalid = await client.call_tool("docker_pull", {"image_name": 42, "wait": "please"})
        assert _error(invalid)["code"].startswith("VALIDATION_")
        missing = await client.call_tool("docker_push", {"tag": "1"})
        assert _error(missing)["code"] == "VALIDATION_MISSING_REQUIRED"
        assert "image_name" in _text(missing)
        assert not (await client.call_tool("queue_metrics", {})).is_error  # still serving
    if target.kind == "stdio":
        log = target.stderr_path.read_text()
        assert "ai-admin MCP server on stdio" in log  # the log went to stderr, not the wire


async def test_pull_with_wait_reports_increasing_progress_and_completes(
    target: Target,
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    repository = f"{open_registry}/mcp/pull"
    tag, ref, pushed = only_in_registry(
        docker_client, image_cleanup, repository, size_mb=24, base=busybox_image
    )

    progress = Progress()
    async with target.session() as client:
        result = await client.call_tool(
            "docker_pull",
            {"image_name": repository, "tag": tag, "wait": True, "wait_timeout_s": 90},
            progress_callback=progress,
        )
    assert not result.is_error, _text(result)
    task = result.structured_content["data"]
    assert task["status"]["value"] == "completed"
    assert task["finished"] is True
    assert task["result"]["digest"] == pushed.digest
    assert docker_client.images.get(ref).id  # really pulled

    values = [p for p, _, _ in progress.seen]
    assert len(values) >= 3, progress.seen
    assert values == sorted(set(values)), f"progress must strictly increase: {values}"
    assert values[0] < 50.0 < values[-1]
    assert values[-1] == 100.0
    assert {total for _, total, _ in progress.seen} == {100.0}
    assert all(message and ": " in message for _, _, message in progress.seen)


async def test_push_with_wrong_credentials_is_an_authentication_tool_error(
    target: Target,
    docker_client: docker.DockerClient,
    auth_registry: AuthRegistry,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    repository = f"{auth_registry.address}/x/y"
    tag = f"t-{uuid.uuid4().hex[:8]}"
    docker_client.images.get(busybox_image).tag(repository, tag)
    image_cleanup.add(f"{repository}:{tag}")
    auth = {"username": auth_registry.username, "password": CANARY}

    async with target.session() as client:
        result = await client.call_tool(
            "docker_push",
            {"image_name": repository, "tag": tag, "auth": auth, "wait": True},
        )
        error = _error(result)
        assert error["code"] == "DOCKER_AUTHENTICATION_FAILED"
        assert error["suggestions"]
        assert _text(result).startswith("docker_push failed: DOCKER_AUTHENTICATION_FAILED")
        assert error["suggestions"][0] in _text(result)
        assert result.structured_content["task"]["status"]["value"] == "failed"

        task_id = error["details"]["task_id"]
        log = await client.read_resource(f"ai-admin://tasks/{task_id}/log")
        assert isinstance(log.contents[0], types.TextResourceContents)
        prompt = await client.get_prompt("diagnose_task", {"task_id": task_id})
        content = prompt.messages[0].content
        assert isinstance(content, types.TextContent)
        assert "Error code: DOCKER_AUTHENTICATION_FAILED" in content.text
        assert error["suggestions"][0] in content.text

    everything = json.dumps(result.structured_content) + _text(result) + content.text
    everything += log.contents[0].text
    assert CANARY not in everything


# --- the HTTP door's tokens ---------------------------------------------------------------------


async def test_http_refuses_requests_without_a_valid_token(http_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for headers, code in [
            ({}, "AUTH_REQUIRED"),
            ({"Authorization": "Bearer not-a-token"}, "AUTH_INVALID_TOKEN"),
        ]:
            async with http.post(http_url, json=INITIALIZE, headers={**ACCEPT, **headers}) as r:
                assert r.status == 401
                assert (await r.json())["error"]["code"] == code
        ok = {**ACCEPT, "Authorization": f"Bearer {OPERATOR}"}
        async with http.post(http_url, json=INITIALIZE, headers=ok) as r:
            assert r.status == 200
            assert r.headers["Mcp-Session-Id"]

    # The SDK client gives up too: the 401 surfaces as an MCP error, not a session.
    with pytest.raises(BaseException) as refused:  # noqa: PT011 - the SDK wraps it in groups
        async with Target("http", Path(), http_url).session(token="not-a-token") as client:
            await client.list_tools()
    assert any(isinstance(e, MCPError) for e in _leaves(refused.value)), refused.value


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


async def test_http_read_only_token_reads_but_cannot_queue_work(http_url: str) -> None:
    async with Target("http", Path(), http_url).session(token=READER) as client:
        status = await client.call_tool("queue_status", {"detailed": True})
        assert not status.is_error, _text(status)
        refused = await client.call_tool("docker_pull", {"image_name": "busybox", "wait": True})
        assert _error(refused)["code"] == "AUTH_FORBIDDEN"
        listed = await client.call_tool("queue_list_tasks", {})
        assert listed.structured_content["data"]["total"] == 0  # nothing was queued
