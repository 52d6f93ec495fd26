"""Real Docker work over HTTP: a pull whose steps arrive over server-sent events while it runs,
event streams cut mid-pull and resumed with Last-Event-ID (nothing lost, nothing twice, even
across a restart of the agent), and a credential canary that never comes back out of any door,
log or file."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import docker
import pytest
from agent_process import AgentProcess, serving
from dockerenv import ImageCleanup, build_random_data_image, push_image
from executor_harness import RegistryProxy
from http_client import Api, client
from sse_client import EventStream, open_events

from ai_admin.errors import ErrorCode

pytestmark = pytest.mark.docker

PULL_MB = 24
RESUME_MB = 40
RESUME_RATE = 10_000_000  # bytes/s through the proxy: the resumed pull takes about 4 s
FINISHED = {"completed", "failed", "cancelled", "timeout", "merged"}


@pytest.fixture(scope="module")
def agent_options() -> dict[str, Any]:
    # TRACE: the most the agent ever logs, so the canary test sees every line it could leak to.
    return {"args": ["--log-level", "TRACE"]}


@pytest.fixture(autouse=True)
async def _resumed(api: Api) -> AsyncIterator[None]:
    yield
    await api.ok("queue_resume")


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

    numbers = [e["progress_detail"] for e in downloading if e["progress_detail"]]
    assert numbers, "no numbers while downloading"
    assert all(n["phase"] == "downloading" for n in numbers)
    assert numbers[-1]["bytes_done"] == numbers[-1]["bytes_total"] >= PULL_MB * 1024 * 1024

    state = await api.task(task_id)
    assert state["status"]["value"] == "completed"
    detail = state["progress_detail"]  # the REST task keeps its last numbers
    assert detail["phase"] == "extracting"
    assert detail["bytes_done"] == detail["bytes_total"]
    assert state["result"]["bytes_downloaded"] >= PULL_MB * 1024 * 1024
    assert docker_client.images.get(f"{repository}:{tag}").id == state["result"]["image_id"]

    # A finished task's stream is its final state, then the end.
    again = await open_events(api, f"?task_id={task_id}")
    try:
        assert [e["status"] for e in await again.until_closed()] == ["completed"]
    finally:
        again.response.close()


async def test_streams_cut_mid_pull_resume_with_last_event_id_and_lose_nothing(
    api: Api,
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    """A one-task stream and an all-tasks stream are cut while a slow pull downloads; reopened
    with Last-Event-ID a second later, each gives exactly what an uninterrupted twin gave."""
    repository, tag = await asyncio.to_thread(
        pushed_image, docker_client, open_registry, busybox_image, image_cleanup, RESUME_MB
    )
    proxy = RegistryProxy(open_registry, rate=RESUME_RATE)
    slow = repository.replace(open_registry, proxy.address, 1)
    image_cleanup.add(f"{slow}:{tag}")
    streams: list[EventStream] = []

    async def opened(query: str = "", last_event_id: str | None = None) -> EventStream:
        streams.append(await open_events(api, query, last_event_id))
        return streams[-1]

    try:
        await api.ok("queue_pause")  # so that every stream opens before the first step
        submitted = await api.request(
            "POST",
            "/api/tasks",
            json_body={"task_type": "docker_pull", "params": {"image_name": slow, "tag": tag}},
        )
        task_id = submitted.data["task_id"]
        one = f"?task_id={task_id}"

        # The stream of everything carries other things' events too (queue_resumed): no task_id.
        def ours_downloading(e: dict[str, Any]) -> bool:
            return e.get("task_id") == task_id and e["status"] == "downloading"

        def ours_ended(e: dict[str, Any]) -> bool:
            return e.get("task_id") == task_id and e["status"] in FINISHED

        whole_task, whole_all = await opened(one), await opened()
        cut_task, cut_all = await opened(one), await opened()
        await api.ok("queue_resume")
        before_task = await cut_task.until(lambda e: ours_downloading(e) and e["progress"] > 0)
        before_all = await cut_all.until(lambda e: ours_downloading(e) and e["progress"] > 0)
        assert cut_task.retry_ms == cut_all.retry_ms == 2000
        cut_task.response.close()  # the connections drop mid-download
        cut_all.response.close()
        await asyncio.sleep(1.0)  # the pull goes on: events the cut streams do not get
        reconnected_at = time.time()
        resumed_task = await opened(one, cut_task.last_id)
        resumed_all = await opened("", cut_all.last_id)
        after_task = await resumed_task.until_closed()
        after_all = await resumed_all.until(ours_ended)
        expected_task = await whole_task.until_closed()
        expected_all = await whole_all.until(ours_ended)
    finally:
        for stream in streams:
            stream.response.close()
        proxy.close()

    assert expected_task[-1]["status"] == "completed"
    assert changes(before_task + after_task) == changes(expected_task)
    assert changes(before_all + after_all) == changes(expected_all)
    for after in (after_task, after_all):
        replayed = [e for e in after if e["at"] < reconnected_at]
        assert len(replayed) >= 3, "the cut streams missed nothing: the test proves nothing"
        assert all(e["event"] != "reset" for e in after)
    print(
        f"\nresumed: {len(expected_task)} events on the task's stream, "
        f"{sum(e['at'] < reconnected_at for e in after_task)} of them replayed after the cut"
    )
    ids = [e["id"] for e in expected_all]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # one more each: nothing left out

    # A finished task resumed after its end: the stream just ends; from an id never given
    # out: a reset, then the state.
    done = await opened(one, str(expected_task[-1]["id"]))
    assert await done.until_closed() == []
    unknown = await opened(one, "1")
    reset, snapshot = await unknown.until_closed()
    assert reset == {"event": "reset", "last_event_id": 1}
    assert (snapshot["event"], snapshot["status"]) == ("snapshot", "completed")
    assert unknown.last_id == str(snapshot["id"])


async def test_an_id_from_before_a_restart_is_never_replayed_as_another_event(
    tmp_path: Any, open_registry: str
) -> None:
    """Ids of a later run are all higher than an earlier run's, so a client that reconnects
    to a restarted agent with its last id is told to start over, not fed the wrong events."""
    data_dir = tmp_path / "data"
    params = {"image_name": f"{open_registry}/ai-admin-test/absent", "tag": "nope"}

    async def failed_pull(agent: AgentProcess) -> tuple[list[dict[str, Any]], str | None]:
        async with client(agent.url, api_token(agent)) as api:
            stream = await open_events(api)
            try:
                submitted = await api.request(
                    "POST", "/api/tasks", json_body={"task_type": "docker_pull", "params": params}
                )
                task_id = submitted.data["task_id"]
                events = await stream.until(
                    lambda e: e.get("task_id") == task_id and e["status"] in FINISHED
                )
                return events, stream.last_id
            finally:
                stream.response.close()

    with serving(data_dir) as first:
        first_events, last_id = await failed_pull(first)
    with serving(data_dir) as second:
        second_events, _ = await failed_pull(second)
        async with client(second.url, api_token(second)) as api:
            resumed = await open_events(api, "", last_id)
            try:
                reset = await resumed.next()
            finally:
                resumed.response.close()
    assert last_id is not None
    assert min(e["id"] for e in second_events) > max(e["id"] for e in first_events)
    assert reset == {"event": "reset", "last_event_id": int(last_id)}


def changes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events as compared between two streams: a snapshot's time is when its stream read it."""
    return [{**e, "at": None} if e["event"] == "snapshot" else e for e in events]


def api_token(agent: AgentProcess) -> str:
    assert agent.token is not None
    return agent.token


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
