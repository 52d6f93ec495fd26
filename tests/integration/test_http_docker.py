"""Real Docker work over HTTP: a pull whose steps arrive over server-sent events while it runs,
and a credential canary that never comes back out of any door, log or file."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import docker
import pytest
from agent_process import AgentProcess
from dockerenv import ImageCleanup, build_random_data_image, push_image
from http_client import WAIT_S, Api

from ai_admin.errors import ErrorCode

pytestmark = pytest.mark.docker

PULL_MB = 24
FINISHED = {"completed", "failed", "cancelled", "timeout", "merged"}


@pytest.fixture(scope="module")
def agent_options() -> dict[str, Any]:
    # TRACE: the most the agent ever logs, so the canary test sees every line it could leak to.
    return {"args": ["--log-level", "TRACE"]}


@pytest.fixture(autouse=True)
async def _resumed(api: Api) -> AsyncIterator[None]:
    yield
    await api.ok("queue_resume")


class EventStream:
    """``GET /api/events``, read frame by frame as the agent writes them."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.raw: list[str] = []

    async def next(self, timeout_s: float = WAIT_S) -> dict[str, Any] | None:
        """The next event, or None when the agent has closed the stream."""
        kind, data = None, None
        async with asyncio.timeout(timeout_s):
            while True:
                line_bytes = await self.response.content.readline()
                if not line_bytes:
                    return None
                line = line_bytes.decode()
                self.raw.append(line)
                line = line.rstrip("\n")
                if line.startswith(":"):
                    continue  # keep-alive comment
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                elif line == "" and data is not None:
                    assert data["event"] == kind, (kind, data)
                    return dict(data)

    async def until_closed(self, timeout_s: float = WAIT_S) -> list[dict[str, Any]]:
        events = []
        deadline = time.monotonic() + timeout_s
        while (event := await self.next(max(0.1, deadline - time.monotonic()))) is not None:
            events.append(event)
        return events


async def open_events(api: Api, query: str = "") -> EventStream:
    response = await api.session.get(
        f"{api.url}/api/events{query}",
        headers={"Authorization": f"Bearer {api.token}"},
        timeout=aiohttp.ClientTimeout(total=None, sock_read=WAIT_S),
    )
    assert response.status == 200, await response.text()
    assert response.content_type == "text/event-stream"
    return EventStream(response)


def pushed_image(
    client: docker.DockerClient, registry: str, base: str, cleanup: ImageCleanup, size_mb: int
) -> tuple[str, str]:
    """An image only the registry has: built, pushed, removed here. (repository, tag)"""
    repository = f"{registry}/ai-admin-test/http-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:12]
    ref = cleanup.add(f"{repository}:{tag}")
    build_random_data_image(client, ref, size_mb=size_mb, base=base)
    push_image(client, repository, tag)
    client.images.remove(ref, force=True)
    return repository, tag


def distinct(values: list[str]) -> list[str]:
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


async def test_pull_steps_arrive_over_sse_in_order_while_it_runs(
    api: Api,
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    repository, tag = await asyncio.to_thread(
        pushed_image, docker_client, open_registry, busybox_image, image_cleanup, PULL_MB
    )
    await api.ok("queue_pause")  # so the stream opens before the first step
    submitted = await api.request(
        "POST",
        "/api/tasks",
        json_body={"task_type": "docker_pull", "params": {"image_name": repository, "tag": tag}},
    )
    task_id = submitted.data["task_id"]
    stream = await open_events(api, f"?task_id={task_id}")
    try:
        snapshot = await stream.next()
        assert snapshot is not None
        assert (snapshot["event"], snapshot["task_id"], snapshot["status"]) == (
            "snapshot",
            task_id,
            "pending",
        )
        await api.ok("queue_resume")
        events = [snapshot, *await stream.until_closed(timeout_s=120)]
    finally:
        stream.response.close()

    assert {e["task_id"] for e in events} == {task_id}
    statuses = distinct([e["status"] for e in events])
    assert statuses == [
        "pending",
        "running",
        "validating",
        "preparing",
        "pulling",
        "downloading",
        "pulling",  # extracting
        "completed",
    ], statuses
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress), "progress went down"
    assert progress[-1] == 100
    assert all(p < 100 for p in progress[:-1])
    # Docker reports a layer's bytes a few times a second: a fast pull may show one update.
    downloading = [e for e in events if e["status"] == "downloading" and e["event"] == "progress"]
    assert downloading, "the download's bytes were not reported as it ran"
    assert 0 < downloading[0]["progress"] <= 80
    assert "MB" in downloading[-1]["current_step"]
    partial = {e["progress"] for e in events if e["event"] == "progress"} - {0, 100}
    assert len(partial) >= 2, "progress should move through download and extraction"
    times = [e["at"] for e in events]
    assert times == sorted(times)
    assert events[-1]["event"] == "status"  # and then the agent closed the stream

    state = await api.task(task_id)
    assert state["status"]["value"] == "completed"
    assert state["result"]["bytes_downloaded"] >= PULL_MB * 1024 * 1024
    assert docker_client.images.get(f"{repository}:{tag}").id == state["result"]["image_id"]

    # A finished task's stream is its final state, then the end.
    again = await open_events(api, f"?task_id={task_id}")
    try:
        assert [e["status"] for e in await again.until_closed()] == ["completed"]
    finally:
        again.response.close()


async def test_a_credential_canary_never_leaves_the_agent(
    api: Api,
    agent: AgentProcess,
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    auth = {"username": "tester", "password": canary}
    repository = f"{open_registry}/ai-admin-test/canary-{uuid.uuid4().hex[:8]}"
    tag = "1"
    ref = image_cleanup.add(f"{repository}:{tag}")
    await asyncio.to_thread(build_random_data_image, docker_client, ref, 1, base=busybox_image)
    watch = await open_events(api)  # every task's events, for the whole test
    try:
        pushed = await api.ok("docker_push", image_name=repository, tag=tag, auth=auth)
        missing = await api.ok(
            "docker_push", image_name=f"{repository}-missing", tag=tag, auth=auth, max_retries=0
        )
        failing = await api.request(
            "POST",
            "/api/tasks",
            json_body={
                "task_type": "docker_pull",
                "params": {
                    "image_name": "127.0.0.1:1/ai-admin-test/unreachable",
                    "auth": {**auth, "registry": "127.0.0.1:1"},
                    "max_retries": 1,
                },
            },
        )
        ids = [pushed["task_id"], missing["task_id"], failing.data["task_id"]]
        refused = await api.cmd(
            {"action": "docker_pull", "params": {"image_name": "a", "auth": {**auth, "x": canary}}}
        )
        assert refused.code == ErrorCode.VALIDATION_INVALID_PARAMS

        outcomes = {i: (await api.finished(i))["status"]["value"] for i in ids}
        assert outcomes == {ids[0]: "completed", ids[1]: "failed", ids[2]: "failed"}
        seen: set[str] = set()
        while not set(ids) <= seen:
            event = await watch.next()
            assert event is not None
            if event["status"] in FINISHED:
                seen.add(event["task_id"])
    finally:
        watch.response.close()

    for task_id in ids:
        await api.request("GET", f"/api/tasks/{task_id}?include_logs=true&detailed=true")
        await api.ok("queue_task_status", task_id=task_id, include_logs=True, detailed=True)
        one = await open_events(api, f"?task_id={task_id}")
        try:
            await one.until_closed()
        finally:
            one.response.close()
        watch.raw += one.raw
    await api.ok("queue_status", detailed=True, include_logs=True)
    await api.ok("queue_list_tasks", include_logs=True, limit=1000)
    await api.ok("queue_export")
    await api.request("GET", "/api/tasks?include_logs=true&limit=1000")
    await api.request("GET", "/metrics", envelope=False)
    await api.request("GET", "/api/commands")

    answers = "".join(a.text for a in api.answers) + "".join(watch.raw)
    assert '"***"' in answers  # the auth is shown, redacted
    assert canary not in answers
    assert canary not in agent.output()
    for path in agent.data_dir.iterdir():
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), f"the canary is in {path.name}"
