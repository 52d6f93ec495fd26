"""Real answers against the published schemas, for every command: through MCP (each tool's
``outputSchema``, waiting included), through HTTP when answers are cut to fit
``max_answer_bytes``, the server-sent events of a real pull (``TaskEvent``'s schema), and the
MCP transport's own refusals against the OpenAPI document.

``POST /cmd`` and the REST routes are checked against the OpenAPI document in
``test_http_cmd.py`` and ``test_http_rest.py`` (every answer of every test there).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import docker
import httpx2
import jsonschema
import mcp.types as types
import pytest
from agent_process import OPERATOR_TOKEN, READ_ONLY_TOKEN
from dockerenv import ImageCleanup, build_random_data_image, push_image
from http_client import client
from inprocess_agent import Served, serve_agent
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from wire_check import Validated, check_event, check_frame

from ai_admin.commands import REGISTRY
from ai_admin.http import openapi
from ai_admin.mcp import MCP_PATH
from ai_admin.wire.envelope import Failure, envelope_schema

pytestmark = pytest.mark.docker

UNREACHABLE = "127.0.0.1:1/ai-admin-test/unreachable"  # refused at once: a quick failure
TIMEOUT_S = 120.0


@asynccontextmanager
async def mcp_session(served: Served, token: str = OPERATOR_TOKEN) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, trust_env=False, timeout=TIMEOUT_S) as http,
        Client(
            streamable_http_client(served.url + MCP_PATH, http_client=http),
            read_timeout_seconds=TIMEOUT_S,
        ) as session,
    ):
        yield session


class Tools:
    """An MCP client that checks every structured result against its tool's outputSchema."""

    def __init__(self, session: Client, tools: dict[str, types.Tool]) -> None:
        self.session = session
        self.tools = tools
        self.validated = Validated()

    async def call(self, tool: str, /, **arguments: Any) -> dict[str, Any]:
        result = await self.session.call_tool(tool, arguments)
        self.validated.check_tool(self.tools[tool], result)
        content: dict[str, Any] = result.structured_content or {}
        return content

    async def data(self, tool: str, /, **arguments: Any) -> dict[str, Any]:
        content = await self.call(tool, **arguments)
        assert content["success"], content
        data: dict[str, Any] = content["data"]
        return data


def registry_image(
    client: docker.DockerClient, registry: str, base: str, cleanup: ImageCleanup, size_mb: int = 0
) -> tuple[str, str]:
    """An image only the open registry has (repository, tag): ``base``, or with ``size_mb``
    MiB of fresh data on top (a pull long enough to report its bytes)."""
    repository = f"{registry}/ai-admin-test/wire-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:12]
    ref = cleanup.add(f"{repository}:{tag}")
    if size_mb:
        build_random_data_image(client, ref, size_mb=size_mb, base=base)
    else:
        client.images.get(base).tag(repository, tag)
    push_image(client, repository, tag)
    client.images.remove(ref)
    return repository, tag


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serve_agent(
        tmp_path / "data", docker=True, start=True, max_retries=0, shutdown_grace_s=1
    ) as agent:
        yield agent


async def test_every_tool_answers_as_its_output_schema_says(
    served: Served,
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    repository, tag = await asyncio.to_thread(
        registry_image, docker_client, open_registry, busybox_image, image_cleanup
    )
    async with mcp_session(served) as session:
        listed = {tool.name: tool for tool in (await session.list_tools()).tools}
        tools = Tools(session, listed)
        # waiting: a task that completes, one that fails, one still waiting at the limit
        done = await tools.data("docker_pull", image_name=repository, tag=tag, wait=True)
        assert (done["finished"], done["status"]["value"]) == (True, "completed")
        failed = await tools.call("docker_pull", image_name=UNREACHABLE, tag="x", wait=True)
        assert failed["task"]["status"]["value"] == "failed"
        await tools.data("queue_pause")
        waiting = await tools.data(
            "docker_pull", image_name=UNREACHABLE, tag="w", wait=True, wait_timeout_s=0.2
        )
        assert waiting["finished"] is False
        # submitting, merging, and each command on live and finished tasks
        first = await tools.data("docker_pull", image_name=UNREACHABLE, tag="m")
        twin = await tools.data("docker_pull", image_name=UNREACHABLE, tag="m")
        assert twin["merged_into"] == first["task_id"]
        dockerfile = f"FROM scratch\nLABEL org.ai-admin.test={uuid.uuid4().hex}\n"
        await tools.data("docker_build", dockerfile=dockerfile, priority="high")
        await tools.data("docker_push", image_name=f"ai-admin-test/none-{tag}", tag="1")
        await tools.data("queue_status")
        await tools.data("queue_status", detailed=True, include_logs=True)
        for task_id in (first["task_id"], done["task_id"], failed["task"]["task_id"]):
            await tools.data("queue_task_status", task_id=task_id, detailed=True, include_logs=True)
            await tools.data("queue_task_status", task_id=task_id)
        await tools.data("queue_list_tasks")
        await tools.data("queue_list_tasks", status=["failed"], include_logs=True)
        for action in ("pause", "resume", "cancel"):
            await tools.data("queue_manage", action=action, task_id=first["task_id"])
        await tools.data("queue_manage", action="retry", task_id=first["task_id"], force=True)
        # two batches in a named queue, held by a task of the paused default queue
        await tools.data("queue_create", name="bulk", max_concurrent=1)
        await tools.data("queue_list")
        batches = []
        for n in ("b1", "b2"):
            held = {"image_name": UNREACHABLE, "tag": n, "depends_on": [first["task_id"]]}
            after = {"image_name": UNREACHABLE, "tag": f"{n}-after"}
            pulls = [
                {"action": "docker_pull", "params": held},
                {"action": "docker_pull", "params": after, "depends_on": [0]},
            ]
            batches.append(
                await tools.data("batch_submit", name=n, queue="bulk", serial=True, tasks=pulls)
            )
        waiting = batches[1]["batch_id"]  # behind the first in line
        await tools.data("batch_status", batch_id=waiting)
        await tools.data("batch_move", batch_id=waiting, position=2)
        await tools.data("batch_stop", batch_id=waiting)
        await tools.data("batch_start", batch_id=waiting)
        await tools.data("batch_list")
        for batch in batches:
            await tools.data("batch_cancel", batch_id=batch["batch_id"])
            await tools.data("batch_remove", batch_id=batch["batch_id"])
        await tools.data("queue_delete", queue="bulk")
        # a schedule
        pull = {"action": "docker_pull", "params": {"image_name": UNREACHABLE, "tag": "s"}}
        schedule = await tools.data("schedule_create", name="s", cron="0 3 * * *", command=pull)
        for command in ("schedule_get", "schedule_pause", "schedule_resume"):
            await tools.data(command, schedule_id=schedule["schedule_id"])
        await tools.data("schedule_list")
        await tools.data("schedule_delete", schedule_id=schedule["schedule_id"])
        await tools.data("queue_resume")
        await asyncio.wait_for(served.agent.queue.join(), TIMEOUT_S)
        await tools.data("queue_metrics")
        for what in ("all", "jobs", "metrics", "config"):
            await tools.data("queue_export", what=what)
        await tools.data("queue_configure")
        await tools.data("queue_configure", max_concurrent=3)
        await tools.data("commands")
        await tools.data("queue_clear", include_failed=True)
        # refusals
        await tools.call("queue_task_status", task_id="no-such-task")
        await tools.call("queue_list_tasks", limit="many")
        await tools.call("docker_pull", image_name="busybox", wait="please")
        unknown = await session.call_tool("no_such_tool", {})
        assert unknown.structured_content is not None
        jsonschema.validate(unknown.structured_content, envelope_schema(Failure))
    async with mcp_session(served, READ_ONLY_TOKEN) as session:
        reader = Tools(session, listed)
        await reader.call("queue_pause")
    assert tools.validated.successes == set(REGISTRY.names())
    assert {"queue_task_status", "queue_list_tasks", "docker_pull"} <= tools.validated.failures
    assert reader.validated.failures == {"queue_pause"}


async def test_answers_cut_to_fit_max_answer_bytes_are_as_documented(tmp_path: Path) -> None:
    async with (
        serve_agent(tmp_path / "data", max_answer_bytes=65_536) as agent,
        client(agent.url, OPERATOR_TOKEN) as api,
    ):
        await api.ok("queue_pause")  # the tasks stay live, for queue_status's lists
        for n in range(40):
            dockerfile = f"FROM scratch\nLABEL n={n}\n# {'x' * 2000}\n"
            await api.ok("docker_build", dockerfile=dockerfile)
        listing = await api.ok("queue_list_tasks", limit=100, include_logs=True)
        status = await api.ok("queue_status", detailed=True, limit=100)
        export = await api.ok("queue_export")
        assert listing["truncated"]
        assert status["truncated"]
        assert export["truncated"]
        await api.request("GET", f"/api/tasks?limit=100&offset={listing['next_offset']}")
        await api.request("GET", "/api/stats?detailed=true")
        validated = Validated()
        for answer in api.answers:
            validated.check_http(answer)
        assert {"queue_list_tasks", "queue_status", "queue_export"} <= validated.successes
        async with mcp_session(agent) as session:
            listed = {tool.name: tool for tool in (await session.list_tools()).tools}
            tools = Tools(session, listed)
            assert (await tools.data("queue_status", detailed=True))["truncated"]
            assert (await tools.data("queue_export", what="jobs"))["truncated"]


async def test_the_events_of_a_real_pull_are_as_documented(
    served: Served,
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    repository, tag = await asyncio.to_thread(
        registry_image, docker_client, open_registry, busybox_image, image_cleanup, 24
    )
    async with client(served.url, OPERATOR_TOKEN) as api:
        await api.ok("queue_pause")  # so the stream opens before the first step
        submitted = await api.ok("docker_pull", image_name=repository, tag=tag)
        async with api.session.get(
            f"{api.url}/api/events",
            params={"task_id": submitted["task_id"]},
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
        ) as response:
            assert response.status == 200
            await api.ok("queue_resume")
            text = await response.text()  # the stream ends with the task
    blocks = [
        dict(line.split(": ", 1) for line in block.splitlines())
        for block in text.split("\n\n")
        if block.strip()
    ]
    assert blocks[0] == {"retry": "2000"}  # the reconnection delay, before any event
    frames = [{k: v for k, v in b.items() if k != "id"} for b in blocks[1:]]
    events = [json.loads(frame["data"]) for frame in frames]
    for block, frame, event in zip(blocks[1:], frames, events, strict=True):
        check_frame(frame)  # as the OpenAPI document describes the stream
        check_event(event)  # as TaskEvent's own schema does
        assert block["id"] == str(event["id"])  # the frame's id: is the event's
    kinds = {event["event"] for event in events}
    assert {"snapshot", "status", "progress", "log"} <= kinds, kinds
    assert events[-1]["status"] == "completed"
    ids = [event["id"] for event in events]
    assert ids == sorted(set(ids)), "ids increase, none twice"
    details = [e["progress_detail"] for e in events if e["event"] == "progress"]
    assert any(d and d["phase"] == "downloading" and d["bytes_done"] for d in details)


async def test_the_mcp_transports_refusals_are_as_documented(tmp_path: Path) -> None:
    """/mcp answers JSON-RPC errors of its own beside the agent's envelopes: both documented."""
    document = openapi.document()
    operations = document["paths"][MCP_PATH]
    async with (
        serve_agent(tmp_path / "data") as agent,
        client(agent.url, OPERATOR_TOKEN) as api,
    ):
        sent = [
            ("POST", {"Content-Type": "application/json"}, b'{"jsonrpc": "2.0", "id": 1}'),
            ("GET", {"Mcp-Session-Id": "no-such-session"}, None),
            ("DELETE", {}, None),
            ("POST", {"Content-Type": "application/json", "Host": "elsewhere.example"}, b"{}"),
        ]
        for method, headers, body in sent:
            answer = await api.request(method, MCP_PATH, data=body, headers=headers, envelope=False)
            assert answer.status in (400, 404), answer.describe()
            response = operations[method.lower()]["responses"][str(answer.status)]
            name = response["$ref"].rsplit("/", 1)[-1]
            content = document["components"]["responses"][name]["content"]
            schema = content[answer.content_type]["schema"]
            jsonschema.validate(answer.body, {**schema, "components": document["components"]})
