"""The schedule commands through every door of a served agent, each answer checked against
the schema the agent publishes for it: ``/cmd`` and REST against the OpenAPI document, MCP
against each tool's ``outputSchema``; the event stream's schedule frames against ``Event``;
and ``queue_metrics`` with ``historical``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx2
import mcp.types as types
import pytest
import schedule_cases
from agent_process import OPERATOR_TOKEN, READ_ONLY_TOKEN
from dockerenv import ImageCleanup
from http_client import Api, client
from inprocess_agent import Served, serve_agent
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from wire_check import Validated, check_frame

from ai_admin.mcp import MCP_PATH

SCHEDULE_COMMANDS = {
    "schedule_create",
    "schedule_list",
    "schedule_get",
    "schedule_pause",
    "schedule_resume",
    "schedule_delete",
}
CATALOGUE = Path(__file__).resolve().parents[2] / "commands"
PULL = {"action": "docker_pull", "params": {"image_name": "127.0.0.1:1/wire/app", "tag": "1"}}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serve_agent(tmp_path / "data", start=True) as agent:
        yield agent


async def test_every_schedule_command_answers_as_documented_over_cmd_and_rest(
    served: Served,
) -> None:
    async with client(served.url, OPERATOR_TOKEN) as api:
        made = await api.request(
            "POST", "/api/schedules", json_body={"name": "n", "interval_s": 1, "command": PULL}
        )
        assert made.status == 200, made.describe()
        sid = made.data["schedule_id"]
        await api.request("GET", "/api/schedules")
        await api.request("GET", f"/api/schedules/{sid}")
        await api.request("POST", f"/api/schedules/{sid}/pause")
        await api.request("POST", f"/api/schedules/{sid}/resume")
        for action in ("schedule_get", "schedule_list"):
            await api.cmd(
                {"action": action, "params": {"schedule_id": sid} if "get" in action else {}}
            )
        await api.cmd(
            {
                "action": "schedule_create",
                "params": {"name": "c", "cron": "0 3 * * 0", "command": PULL},
            }
        )
        await api.request("DELETE", f"/api/schedules/{sid}")
        missing = await api.request("GET", f"/api/schedules/{sid}")
        assert (missing.status, missing.code) == (404, "SCHEDULE_NOT_FOUND")
        bad = await api.request(
            "POST", "/api/schedules", json_body={"name": "b", "cron": "0 3 * *", "command": PULL}
        )
        assert (bad.status, bad.code) == (400, "VALIDATION_INVALID_FORMAT")  # the pattern's
        assert bad.body["error"]["details"]["errors"][0]["field"] == "params.cron"
        path_and_body = await api.request(
            "POST", "/api/schedules", json_body=["not", "an", "object"]
        )
        assert path_and_body.status == 400
        await api.cmd({"action": "queue_metrics", "params": {"historical": True}})
        validated = Validated()
        for answer in api.answers:
            validated.check_http(answer)
        assert SCHEDULE_COMMANDS | {"queue_metrics"} <= validated.successes


async def test_every_schedule_tool_answers_as_its_output_schema_says(served: Served) -> None:
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, trust_env=False, timeout=60) as http,
        Client(streamable_http_client(served.url + MCP_PATH, http_client=http)) as session,
    ):
        tools: dict[str, types.Tool] = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) >= SCHEDULE_COMMANDS
        assert tools["schedule_get"].annotations is not None
        assert tools["schedule_get"].annotations.read_only_hint is True
        assert tools["schedule_delete"].annotations is not None
        assert tools["schedule_delete"].annotations.destructive_hint is True
        validated = Validated()

        async def call(tool: str, **arguments: Any) -> dict[str, Any]:
            result = await session.call_tool(tool, arguments)
            validated.check_tool(tools[tool], result)
            content: dict[str, Any] = result.structured_content or {}
            return content

        made = await call("schedule_create", name="m", interval_s=60, command=PULL)
        sid = made["data"]["schedule_id"]
        for tool in ("schedule_get", "schedule_pause", "schedule_resume", "schedule_delete"):
            assert (await call(tool, schedule_id=sid))["success"], tool
        assert (await call("schedule_list"))["data"]["total"] == 0
        gone = await call("schedule_get", schedule_id=sid)
        assert gone["error"]["code"] == "SCHEDULE_NOT_FOUND"
        assert validated.successes == SCHEDULE_COMMANDS


async def test_the_event_stream_carries_schedule_changes_as_documented(served: Served) -> None:
    async with client(served.url, OPERATOR_TOKEN) as api:
        frames: list[dict[str, str]] = []
        async with api.session.get(
            served.url + "/api/events", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        ) as response:
            made = await api.request(
                "POST", "/api/schedules", json_body={"name": "e", "interval_s": 1, "command": PULL}
            )
            sid = made.data["schedule_id"]
            await _fired(api, sid)
            await api.request("POST", f"/api/schedules/{sid}/pause")
            await api.request("DELETE", f"/api/schedules/{sid}")
            names: list[str] = []
            async with asyncio.timeout(30):
                while "schedule_deleted" not in names:
                    frame = await _next_frame(response)
                    if frame.get("event", "").startswith("schedule_"):
                        frames.append(frame)
                        names.append(frame["event"])
    assert names[0] == "schedule_created"
    assert "schedule_fired" in names
    assert names[-2:] == ["schedule_paused", "schedule_deleted"]
    for frame in frames:
        check_frame(frame)
        assert json.loads(frame["data"])["subject_id"] == sid
    fired = next(json.loads(f["data"]) for f in frames if f["event"] == "schedule_fired")
    assert fired["data"]["task_id"]


async def _fired(api: Api, sid: str) -> None:
    async with asyncio.timeout(30):
        while (await api.request("GET", f"/api/schedules/{sid}")).data["runs"] < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # polling the agent with a deadline


async def _next_frame(response: Any) -> dict[str, str]:
    fields: dict[str, str] = {}
    while True:
        line = (await response.content.readline()).decode().rstrip("\n")
        if not line:
            if fields:
                return fields
            continue
        if ": " in line and not line.startswith(":"):
            key, value = line.split(": ", 1)
            fields[key] = value


async def test_the_schedule_cases_for_the_every_command_tests_pass(served: Served) -> None:
    """What schedule_cases.py hands test_http_cmd.py and test_http_security.py holds."""
    async with (
        client(served.url, OPERATOR_TOKEN) as api,
        client(served.url, None) as anonymous,
        client(served.url, READ_ONLY_TOKEN) as reader,
    ):
        for name, run in schedule_cases.SCENARIOS.items():
            await run(api, cast(ImageCleanup, None))  # no image is made
            assert name in {a.body.get("action") for a in api.answers if a.body}
        validated = Validated()
        for answer in api.answers:
            validated.check_http(answer)
        assert validated.successes >= SCHEDULE_COMMANDS
        for method, path, body in schedule_cases.OPERATIONS:
            refused = (
                await anonymous.request(method, path, json_body=body)
                if body
                else (await anonymous.request(method, path))
            )
            assert (refused.status, refused.code) == (401, "AUTH_REQUIRED"), refused.describe()
        for method, path, body in schedule_cases.WRITES:
            answer = (
                await reader.request(method, path, json_body=body)
                if body
                else (await reader.request(method, path))
            )
            assert (answer.status, answer.code) == (403, "AUTH_FORBIDDEN"), answer.describe()
        for name, code in schedule_cases.NOT_FOUND.items():
            message = (CATALOGUE / f"{name}.json").read_bytes()
            answer = await api.request("POST", "/cmd", data=message)
            assert (answer.status, answer.code) == (404, code.value), answer.describe()
        for name in ("schedule_create", "schedule_list"):
            answer = await api.request(
                "POST", "/cmd", data=(CATALOGUE / f"{name}.json").read_bytes()
            )
            assert answer.status == 200, answer.describe()
