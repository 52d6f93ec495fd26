"""The MCP server through the SDK's in-process client, on a queue with a scripted executor.

The executor pulls nothing: it reports three steps of progress and a log line each, then
succeeds, fails with ``DOCKER_AUTHENTICATION_FAILED`` ("denied" in the image name) or runs
until cancelled ("slow"). The real engine is the integration tests' business.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from ai_admin.agent import Agent
from ai_admin.config import Settings
from ai_admin.errors import ErrorCode, ExecutionError
from ai_admin.mcp.server import build_server
from ai_admin.python_api import TaskQueue
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskStatus, TaskType

WAIT_S = 15.0
STEPS = (10.0, 40.0, 70.0)


async def scripted(ctx: TaskContext) -> dict[str, Any]:
    name = str(ctx.params["image_name"])
    await ctx.step(TaskStatus.PULLING, f"Pulling {name}")
    for percent in STEPS:
        ctx.progress(percent, f"Downloaded {percent:.0f}%")
        ctx.log(f"{name}: layer at {percent:.0f}%")
        await asyncio.sleep(0.01)
    if "denied" in name:
        raise ExecutionError(
            "unauthorized: authentication required",
            code=ErrorCode.DOCKER_AUTHENTICATION_FAILED,
            details={"registry": "registry.test"},
        )
    if "slow" in name:
        await asyncio.Event().wait()
    return {"image": name}


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    settings = Settings(data_dir=tmp_path, max_retries=0, shutdown_grace_s=0.5)
    agent = Agent(
        settings, TaskQueue(executors=dict.fromkeys(TaskType, scripted), settings=settings)
    )
    await agent.queue.start()
    yield agent
    async with asyncio.timeout(WAIT_S):
        await agent.stop()


def connect(agent: Agent) -> Client:
    """An in-process client; entered in the test itself (anyio scopes stay in one task)."""
    return Client(build_server(agent), read_timeout_seconds=WAIT_S)


class Progress:
    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))

    @property
    def values(self) -> list[float]:
        return [p for p, _, _ in self.seen]


def _text(result: types.CallToolResult) -> str:
    """The headline: the first text block."""
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def _error(result: Any) -> dict[str, Any]:
    assert result.is_error, result.content
    error: dict[str, Any] = result.structured_content["error"]
    return error


async def test_queue_status_answers_with_the_command_envelope(agent: Agent) -> None:
    async with connect(agent) as client:
        result = await client.call_tool("queue_status", {"detailed": True})
        assert not result.is_error
        envelope = result.structured_content
        assert envelope["success"] is True
        assert envelope["action"] == "queue_status"
        assert envelope["data"]["tasks"] == {"running": [], "pending": [], "paused": []}
        assert _text(result) == "queue_status succeeded."


async def test_without_wait_a_pull_answers_at_once_with_the_task_id(agent: Agent) -> None:
    async with connect(agent) as client:
        result = await client.call_tool("docker_pull", {"image_name": "team/app", "tag": "1"})
        assert not result.is_error
        data = result.structured_content["data"]
        assert data["status"] == "pending"
        assert data["task_id"]
        assert data["task_id"] in _text(result)
        async with asyncio.timeout(WAIT_S):
            finished = await agent.queue.wait_for(data["task_id"])
        assert finished.status is TaskStatus.COMPLETED


async def test_wait_sends_increasing_progress_and_returns_the_finished_task(
    agent: Agent,
) -> None:
    async with connect(agent) as client:
        progress = Progress()
        result = await client.call_tool(
            "docker_pull", {"image_name": "team/app", "wait": True}, progress_callback=progress
        )
        assert not result.is_error, result.content
        data = result.structured_content["data"]
        assert data["status"]["value"] == "completed"
        assert data["finished"] is True
        assert data["result"] == {"image": "team/app"}
        assert data["logs"][-1] == "team/app: layer at 70%"
        values = progress.values
        assert values == sorted(set(values)), "progress must strictly increase"
        assert values[0] == 0.0
        assert values[-1] == 100.0
        assert set(STEPS) <= set(values)
        assert {total for _, total, _ in progress.seen} == {100.0}
        assert any(m and m.startswith("pulling: Downloaded") for _, _, m in progress.seen)
        assert "finished: completed (100%)" in _text(result)


async def test_a_task_that_fails_while_waited_for_is_a_tool_error_with_code_and_suggestions(
    agent: Agent,
) -> None:
    async with connect(agent) as client:
        result = await client.call_tool("docker_push", {"image_name": "denied/app", "wait": True})
        error = _error(result)
        assert error["code"] == "DOCKER_AUTHENTICATION_FAILED"
        assert error["message"] == "unauthorized: authentication required"
        assert any("docker login" in s for s in error["suggestions"])
        assert error["details"]["registry"] == "registry.test"
        task_id = error["details"]["task_id"]
        assert error["details"]["log_uri"] == f"ai-admin://tasks/{task_id}/log"
        assert result.structured_content["task"]["status"]["value"] == "failed"
        text = _text(result)
        assert text.startswith("docker_push failed: DOCKER_AUTHENTICATION_FAILED: unauthorized")
        assert "docker login" in text


async def test_the_wait_limit_returns_the_task_as_it_stands(agent: Agent) -> None:
    async with connect(agent) as client:
        result = await client.call_tool(
            "docker_pull", {"image_name": "slow/app", "wait": True, "wait_timeout_s": 0.3}
        )
        assert not result.is_error
        data = result.structured_content["data"]
        assert data["finished"] is False
        assert data["status"]["value"] == "pulling"
        assert "still pulling" in _text(result)
        await agent.queue.cancel_task(data["task_id"])


async def test_a_merged_submission_waits_for_its_twin(agent: Agent) -> None:
    async with connect(agent) as client:
        first = await client.call_tool("docker_pull", {"image_name": "slow/twin"})
        twin_id = first.structured_content["data"]["task_id"]
        second = await client.call_tool(
            "docker_pull", {"image_name": "slow/twin", "wait": True, "wait_timeout_s": 0.3}
        )
        assert second.structured_content["data"]["task_id"] == twin_id
        await agent.queue.cancel_task(twin_id)


@pytest.mark.parametrize(
    ("tool", "arguments", "code"),
    [
        ("docker_pull", {}, "VALIDATION_MISSING_REQUIRED"),
        ("docker_pull", {"image_name": 5}, "VALIDATION_INVALID_FORMAT"),
        ("docker_pull", {"image_name": "a", "colour": "red"}, "VALIDATION_INVALID_PARAMS"),
        ("docker_pull", {"image_name": "a", "wait": "soon"}, "VALIDATION_INVALID_FORMAT"),
        (
            "docker_pull",
            {"image_name": "a", "wait": True, "wait_timeout_s": 99_999},
            "VALIDATION_INVALID_PARAMS",
        ),
        ("docker_build", {"tags": ["a"]}, "VALIDATION_INVALID_PARAMS"),
        ("queue_status", {"limit": 0}, "VALIDATION_INVALID_PARAMS"),
        ("queue_status", {"wait": True}, "VALIDATION_INVALID_PARAMS"),
        ("queue_manage", {"action": "explode", "task_id": "x"}, "VALIDATION_INVALID_PARAMS"),
    ],
)
async def test_invalid_arguments_are_validation_errors(
    agent: Agent, tool: str, arguments: dict[str, Any], code: str
) -> None:
    async with connect(agent) as client:
        result = await client.call_tool(tool, arguments)
        error = _error(result)
        assert error["code"] == code
        assert error["suggestions"]
        assert _text(result).startswith(f"{tool} failed: {code}: Invalid parameters")
        assert (await client.call_tool("queue_metrics", {})).is_error is False  # still serving


async def test_an_unknown_tool_names_the_closest_ones(agent: Agent) -> None:
    async with connect(agent) as client:
        error = _error(await client.call_tool("docker_pul", {}))
        assert error["code"] == "REQUEST_UNKNOWN_ACTION"
        assert "docker_pull" in error["suggestions"][0]


async def test_an_unknown_task_is_a_tool_error(agent: Agent) -> None:
    async with connect(agent) as client:
        error = _error(await client.call_tool("queue_task_status", {"task_id": "nope"}))
        assert error["code"] == "QUEUE_TASK_NOT_FOUND"


async def test_task_logs_are_resources(agent: Agent) -> None:
    async with connect(agent) as client:
        result = await client.call_tool("docker_pull", {"image_name": "logged/app", "wait": True})
        task_id = result.structured_content["data"]["task_id"]
        uri = f"ai-admin://tasks/{task_id}/log"

        templates = await client.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == [
            "ai-admin://tasks/{task_id}/log"
        ]
        listed = await client.list_resources()
        assert uri in [r.uri for r in listed.resources]
        contents = (await client.read_resource(uri)).contents
        assert isinstance(contents[0], types.TextResourceContents)
        assert contents[0].mime_type == "text/plain"
        assert contents[0].text.splitlines() == [f"logged/app: layer at {p:.0f}%" for p in STEPS]

        with pytest.raises(MCPError, match="No task"):
            await client.read_resource("ai-admin://tasks/nope/log")
        with pytest.raises(MCPError, match="Unknown resource"):
            await client.read_resource("ai-admin://elsewhere")


async def test_the_diagnose_prompt_embeds_code_suggestions_and_log_tail(agent: Agent) -> None:
    async with connect(agent) as client:
        result = await client.call_tool("docker_push", {"image_name": "denied/app", "wait": True})
        task_id = _error(result)["details"]["task_id"]

        prompts = await client.list_prompts()
        assert [(p.name, [a.name for a in p.arguments or []]) for p in prompts.prompts] == [
            ("diagnose_task", ["task_id"])
        ]
        prompt = await client.get_prompt("diagnose_task", {"task_id": task_id})
        content = prompt.messages[0].content
        assert isinstance(content, types.TextContent)
        text = content.text
        assert prompt.messages[0].role == "user"
        assert f"task {task_id} (docker_push) is failed" in text
        assert "Error code: DOCKER_AUTHENTICATION_FAILED" in text
        assert "- Or log the agent's user in: `docker login <registry>`." in text
        assert "denied/app: layer at 70%" in text
        assert "Do not retry an authentication" in text

        with pytest.raises(MCPError, match="No task"):
            await client.get_prompt("diagnose_task", {"task_id": "nope"})
        with pytest.raises(MCPError, match="Unknown prompt"):
            await client.get_prompt("explain_everything", {})
