"""Dependencies, batches and named queues against a real running agent, the real Docker engine
and the test registries: a build then its push, serial batches of real pulls moving through
their queue's line, and two named queues running real pulls side by side within their limits."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import docker
import pytest
from dockerenv import BUSYBOX_IMAGE, ImageCleanup, only_in_registry
from executor_harness import RegistryProxy
from http_client import WAIT_S, Api
from sse_client import open_events

from ai_admin.errors import ErrorCode

# Every answer a test gets has the shape the OpenAPI document gives it.
pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("answers_as_documented")]

FINISHED = {"completed", "failed", "cancelled", "timeout", "merged"}
RUNNING = {"running", "validating", "preparing", "pulling", "downloading", "uploading", "building"}


@pytest.fixture(scope="module")
def agent_options() -> dict[str, Any]:
    return {"env": {"AI_ADMIN_MAX_CONCURRENT": "4"}}


@pytest.fixture(autouse=True)
async def _resumed(api: Api) -> AsyncIterator[None]:
    yield
    await api.ok("queue_resume")


async def _batch_done(api: Api, batch_id: str, timeout_s: float = WAIT_S * 4) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status: dict[str, Any] = await api.ok("batch_status", batch_id=batch_id)
        if status["state"] in {"completed", "failed", "cancelled"}:
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.1)  # polling with a deadline


async def test_a_push_runs_after_its_build_and_fails_with_it(
    api: Api, open_registry: str, busybox_image: str, image_cleanup: ImageCleanup
) -> None:
    repository = f"{open_registry}/ai-admin-test/dependent-{uuid.uuid4().hex[:8]}"
    image_cleanup.add(f"{repository}:1")
    build = await api.ok(
        "docker_build",
        dockerfile=f"FROM {busybox_image}\nRUN echo built > /built\n",
        tags=[f"{repository}:1"],
    )
    push = await api.ok(
        "docker_push", image_name=repository, tag="1", depends_on=[build["task_id"]]
    )
    assert push["queue_position"] is None  # waiting for its build, not in the run order
    pushed = await api.finished(push["task_id"], timeout_s=120)
    built = await api.task(build["task_id"])
    assert (built["status"]["value"], pushed["status"]["value"]) == ("completed", "completed")
    assert pushed["timing"]["started_at"] >= built["timing"]["completed_at"]
    assert pushed["result"]["digest"].startswith("sha256:")

    broken = await api.ok(
        "docker_build",
        dockerfile=f"FROM {busybox_image}\nRUN exit 3\n",
        tags=[f"{repository}:2"],
    )
    never = await api.ok(
        "docker_push", image_name=repository, tag="2", depends_on=[broken["task_id"]]
    )
    failed = await api.finished(never["task_id"], timeout_s=120)
    assert (await api.task(broken["task_id"]))["error"]["code"] == "DOCKER_BUILD_FAILED"
    error = failed["error"]
    assert error["code"] == ErrorCode.QUEUE_DEPENDENCY_FAILED.value
    assert error["details"]["dependency"] == broken["task_id"]
    assert error["suggestions"]
    assert failed["timing"]["started_at"] is None  # it never ran


async def test_an_unknown_dependency_and_a_cycle_are_refused(api: Api) -> None:
    before = await api.total_tasks()
    unknown = await api.refused(
        api.cmd(
            {
                "action": "docker_pull",
                "params": {"image_name": "busybox", "depends_on": ["no-such-task"]},
            }
        ),
        ErrorCode.QUEUE_DEPENDENCY_INVALID,
        400,
    )
    assert unknown.body["error"]["details"]["dependency"] == "no-such-task"
    pull = {"action": "docker_pull", "params": {"image_name": "busybox"}}
    await api.refused(
        api.cmd(
            {
                "action": "batch_submit",
                "params": {
                    "tasks": [{**pull, "depends_on": [1]}, {**pull, "depends_on": [0]}],
                },
            }
        ),
        ErrorCode.QUEUE_DEPENDENCY_INVALID,
        400,
    )
    assert await api.total_tasks() == before


async def test_serial_batches_of_real_pulls_move_through_the_line(
    api: Api,
    open_registry: str,
    docker_client: docker.DockerClient,
    image_cleanup: ImageCleanup,
) -> None:
    repository = f"{open_registry}/ai-admin-test/batch-{uuid.uuid4().hex[:8]}"
    tags = [
        (await asyncio.to_thread(only_in_registry, docker_client, image_cleanup, repository, 2))[0]
        for _ in range(3)
    ]

    def pulls(tag: str) -> list[dict[str, Any]]:
        return [{"action": "docker_pull", "params": {"image_name": repository, "tag": tag}}]

    await api.ok("queue_pause")  # nothing starts until the line is arranged
    first = await api.ok("batch_submit", tasks=pulls(tags[0]), name="first")
    second = await api.ok("batch_submit", tasks=pulls(tags[1]), name="second")
    third = await api.ok("batch_submit", tasks=pulls(tags[2]), name="third")
    assert (first["state"], second["state"]) == ("running", "queued")
    assert (await api.ok("batch_status", batch_id=second["batch_id"]))["position"] == 1
    stopped = await api.ok("batch_stop", batch_id=first["batch_id"])
    assert (stopped["state"], stopped["position"]) == ("stopped", 1)
    moved = await api.ok("batch_move", batch_id=third["batch_id"], position=1)
    assert (moved["state"], moved["position"]) == ("running", None)  # ahead of the stopped one
    assert (await api.ok("batch_status", batch_id=second["batch_id"]))["position"] == 2
    await api.ok("queue_resume")

    assert (await _batch_done(api, third["batch_id"]))["state"] == "completed"
    await asyncio.sleep(0.5)
    held = await api.ok("batch_status", batch_id=second["batch_id"])
    assert held["state"] == "queued"  # the stopped batch holds the line
    assert held["counts"] == {"pending": 1}

    await api.ok("batch_start", batch_id=first["batch_id"])
    done = await _batch_done(api, second["batch_id"])
    assert (done["state"], done["progress"], done["counts"]) == (
        "completed",
        100.0,
        {"completed": 1},
    )
    started = {
        name: (await api.task(batch["task_ids"][0]))["timing"]
        for name, batch in (("first", first), ("second", second), ("third", third))
    }
    assert started["third"]["completed_at"] <= started["first"]["started_at"]
    assert started["first"]["completed_at"] <= started["second"]["started_at"]
    listed = await api.ok("batch_list")
    assert {b["batch_id"] for b in listed["batches"]} >= {
        first["batch_id"],
        second["batch_id"],
        third["batch_id"],
    }


async def test_a_batchs_progress_only_rises_and_ends_at_100(
    api: Api,
    open_registry: str,
    docker_client: docker.DockerClient,
    image_cleanup: ImageCleanup,
) -> None:
    repository = f"{open_registry}/ai-admin-test/progress-{uuid.uuid4().hex[:8]}"
    tags = [
        (await asyncio.to_thread(only_in_registry, docker_client, image_cleanup, repository, 6))[0]
        for _ in range(2)
    ]
    proxy = RegistryProxy(open_registry, rate=4_000_000)  # about 1.5 s a pull
    slow = repository.replace(open_registry, proxy.address, 1)
    for tag in tags:
        image_cleanup.add(f"{slow}:{tag}")
    batch = await api.ok(
        "batch_submit",
        tasks=[{"action": "docker_pull", "params": {"image_name": slow, "tag": t}} for t in tags],
    )
    seen: list[float] = []
    deadline = time.monotonic() + WAIT_S * 4
    while True:
        status = await api.ok("batch_status", batch_id=batch["batch_id"])
        seen.append(status["progress"])
        if status["state"] in {"completed", "failed"}:
            break
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.05)  # polling with a deadline
    assert status["state"] == "completed", status
    assert seen == sorted(seen)
    assert seen[-1] == 100.0
    assert len({p for p in seen if 0 < p < 100}) >= 3, seen  # it moved in steps, by bytes


async def test_two_named_queues_run_side_by_side_within_their_limits(
    api: Api,
    open_registry: str,
    docker_client: docker.DockerClient,
    image_cleanup: ImageCleanup,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    bulk, fast = f"bulk-{suffix}", f"fast-{suffix}"
    assert (await api.ok("queue_create", name=bulk, max_concurrent=1))["limits"][
        "max_concurrent"
    ] == 1
    await api.ok("queue_create", name=fast, max_concurrent=3)
    repository = f"{open_registry}/ai-admin-test/queues-{suffix}"
    made = [
        await asyncio.to_thread(
            only_in_registry, docker_client, image_cleanup, repository, 3, base=BUSYBOX_IMAGE
        )
        for _ in range(8)
    ]
    proxy = RegistryProxy(open_registry, rate=3_000_000)  # about 1 s a pull
    slow = repository.replace(open_registry, proxy.address, 1)
    queue_of: dict[str, str] = {}
    stream = await open_events(api)
    try:
        await api.ok("queue_pause", queue=bulk)
        await api.ok("queue_pause", queue=fast)
        for i, (tag, _, _) in enumerate(made):
            image_cleanup.add(f"{slow}:{tag}")
            queue = bulk if i % 2 else fast
            sub = await api.ok("docker_pull", image_name=slow, tag=tag, queue=queue)
            queue_of[sub["task_id"]] = queue
        await api.ok("queue_resume", queue=bulk)
        await api.ok("queue_resume", queue=fast)

        running: dict[str, set[str]] = {bulk: set(), fast: set()}
        peaks = {bulk: 0, fast: 0}
        together = False
        finished: set[str] = set()
        while finished != set(queue_of):
            event = await stream.next(WAIT_S * 4)
            assert event is not None
            task_id = event.get("task_id")
            if task_id not in queue_of or event["event"] != "status":
                continue
            queue, status = queue_of[task_id], event["status"]
            if status in RUNNING:
                running[queue].add(task_id)
            else:
                running[queue].discard(task_id)
            if status in FINISHED:
                finished.add(task_id)
            peaks = {q: max(peaks[q], len(running[q])) for q in peaks}
            together = together or all(running.values())
    finally:
        stream.response.close()
    assert peaks == {bulk: 1, fast: 3}
    assert together
    listed = {q["name"]: q for q in (await api.ok("queue_list"))["queues"]}
    assert listed[bulk]["limits"]["max_concurrent"] == 1
    assert (listed[bulk]["running"], listed[bulk]["waiting"]) == (0, 0)
    for task_id in queue_of:
        assert (await api.task(task_id))["status"]["value"] == "completed"
    await api.ok("queue_delete", queue=bulk)
    await api.ok("queue_delete", queue=fast)


async def test_the_queue_commands_act_on_the_named_queue(api: Api) -> None:
    name = f"night-{uuid.uuid4().hex[:6]}"
    await api.ok("queue_create", name=name)
    assert await api.ok("queue_pause", queue=name) == {"queue": name, "paused": True}
    held = await api.ok("docker_pull", image_name="busybox", tag="held", queue=name)
    here = await api.ok("queue_status", queue=name, detailed=True)
    assert here["named_queue"]["paused"] is True
    assert [t["id"] for t in here["tasks"]["pending"]] == [held["task_id"]]
    assert (await api.ok("queue_status"))["named_queue"]["name"] == "default"
    listed = await api.ok("queue_list_tasks", queue=name)
    assert [t["id"] for t in listed["tasks"]] == [held["task_id"]]

    changed = await api.ok("queue_configure", queue=name, max_concurrent=2, max_retries=0)
    assert changed["queue"]["limits"]["max_concurrent"] == 2
    assert sorted(changed["queue"]["own_limits"]) == ["max_concurrent", "max_retries"]
    await api.refused(
        api.cmd({"action": "queue_configure", "params": {"queue": name, "retry_base_s": 1}}),
        ErrorCode.VALIDATION_INVALID_PARAMS,
        400,
    )
    await api.refused(
        api.cmd({"action": "queue_pause", "params": {"queue": "no-such-queue"}}),
        ErrorCode.QUEUE_NOT_FOUND,
        404,
    )
    await api.refused(
        api.cmd({"action": "queue_delete", "params": {"queue": name}}),
        ErrorCode.QUEUE_NOT_EMPTY,
        409,
    )
    await api.ok("queue_manage", action="cancel", task_id=held["task_id"])
    elsewhere = await api.ok("docker_pull", image_name="busybox", tag="elsewhere")
    await api.ok("queue_manage", action="cancel", task_id=elsewhere["task_id"])
    cleared = await api.ok("queue_clear", queue=name, include_failed=True)
    assert cleared == {"deleted": 1}
    assert (await api.task(elsewhere["task_id"]))["status"]["value"] == "cancelled"
    await api.ok("queue_delete", queue=name)


async def test_batches_and_queues_over_rest(api: Api) -> None:
    name = f"rest-{uuid.uuid4().hex[:6]}"
    made = await api.request("POST", "/api/queues", json_body={"name": name, "max_concurrent": 2})
    assert made.status == 200, made.describe()
    paused = await api.request("POST", f"/api/queues/{name}/pause")
    assert paused.data == {"queue": name, "paused": True}
    shown = await api.request("GET", f"/api/queues/{name}")
    assert shown.data["named_queue"]["limits"]["max_concurrent"] == 2
    configured = await api.request(
        "POST", f"/api/queues/{name}/configure", json_body={"max_queue_size": 5}
    )
    assert configured.data["queue"]["limits"]["max_queue_size"] == 5
    listed = await api.request("GET", "/api/queues")
    assert name in [q["name"] for q in listed.data["queues"]]

    stream = await open_events(api)
    pull = {"action": "docker_pull", "params": {"image_name": "busybox", "tag": "rest"}}
    submitted = await api.request(
        "POST", "/api/batches", json_body={"tasks": [pull], "queue": name, "name": "rest"}
    )
    assert submitted.status == 200, submitted.describe()
    batch_id = submitted.data["batch_id"]
    stopped = await api.request("POST", f"/api/batches/{batch_id}/stop")
    assert stopped.data["state"] == "stopped"
    got = await api.request("GET", f"/api/batches/{batch_id}")
    assert (got.data["name"], got.data["queue"]) == ("rest", name)
    in_queue = await api.request("GET", f"/api/batches?queue={name}")
    assert [b["batch_id"] for b in in_queue.data["batches"]] == [batch_id]
    cancelled = await api.request("POST", f"/api/batches/{batch_id}/cancel")
    assert cancelled.data["state"] == "cancelled"
    removed = await api.request("DELETE", f"/api/batches/{batch_id}")
    assert removed.data == {"batch_id": batch_id, "removed": True}
    missing = await api.request("GET", f"/api/batches/{batch_id}")
    assert (missing.status, missing.code) == (404, ErrorCode.BATCH_NOT_FOUND.value)
    try:
        events = await stream.until(lambda e: e["event"] == "batch_deleted")
    finally:
        stream.response.close()
    changes = [(e["event"], e["data"]["state"]) for e in events if e.get("subject") == "batch"]
    assert changes == [
        ("batch_created", "queued"),
        ("batch_started", "running"),
        ("batch_stopped", "stopped"),
        ("batch_finished", "cancelled"),
        ("batch_deleted", "cancelled"),
    ]
    assert all(e["subject_id"] == batch_id for e in events if e.get("subject") == "batch")

    cleared = await api.request(
        "POST", f"/api/queues/{name}/clear", json_body={"include_failed": True}
    )
    assert cleared.data == {"deleted": 1}
    await api.request("POST", f"/api/queues/{name}/resume")
    deleted = await api.request("DELETE", f"/api/queues/{name}")
    assert deleted.data == {"queue": name, "deleted": True}
