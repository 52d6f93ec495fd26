"""The REST routes against a real agent: the same commands as ``/cmd``, addressed by URL.

``GET /api/tasks`` (filters and paging), ``GET /api/tasks/{id}``, ``POST /api/tasks``,
``POST /api/tasks/{id}/pause|resume|retry|cancel``, ``GET /api/stats``, ``GET /api/commands``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dockerenv import ImageCleanup
from http_client import Answer, Api

from ai_admin.commands import REGISTRY
from ai_admin.errors import ErrorCode

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("answers_as_documented")]

UNREACHABLE = "127.0.0.1:1/ai-admin-test/unreachable"


@pytest.fixture(autouse=True)
async def _resumed(api: Api) -> AsyncIterator[None]:
    yield
    await api.ok("queue_resume")


async def submit(api: Api, task_type: str, params: dict[str, Any]) -> Answer:
    return await api.request(
        "POST", "/api/tasks", json_body={"task_type": task_type, "params": params}
    )


async def pull(api: Api, *, wait: bool) -> str:
    """A pull that fails at once (nothing listens on port 1), or waits in a paused queue."""
    params = {"image_name": UNREACHABLE, "tag": uuid.uuid4().hex[:12], "max_retries": 0}
    answer = await submit(api, "docker_pull", params)
    task_id: str = answer.data["task_id"]
    if not wait:
        assert (await api.finished(task_id))["status"]["value"] == "failed"
    return task_id


async def build(api: Api, cleanup: ImageCleanup) -> str:
    dockerfile = f"FROM scratch\nLABEL org.ai-admin.test={uuid.uuid4().hex}\n"
    answer = await submit(api, "docker_build", {"dockerfile": dockerfile})
    state = await api.finished(answer.data["task_id"])
    assert state["status"]["value"] == "completed", state
    cleanup.add(state["result"]["image_id"])
    return str(state["task_id"])


async def get(api: Api, path: str) -> Answer:
    return await api.request("GET", path)


async def test_list_tasks_with_filters_and_paging(api: Api, image_cleanup: ImageCleanup) -> None:
    failed = [await pull(api, wait=False) for _ in range(3)]
    completed = await build(api, image_cleanup)
    await api.ok("queue_pause")
    pending = await pull(api, wait=True)
    paused = await pull(api, wait=True)
    await api.request("POST", f"/api/tasks/{paused}/pause")

    everything = (await get(api, "/api/tasks?limit=1000")).data
    ids = [t["id"] for t in everything["tasks"]]
    assert everything["total"] == len(ids)
    assert ids[:6] == [paused, pending, completed, *reversed(failed)]  # newest first

    only_failed = (await get(api, "/api/tasks?status=failed&limit=1000")).data
    assert {t["status"] for t in only_failed["tasks"]} == {"failed"}
    assert set(failed) <= {t["id"] for t in only_failed["tasks"]}
    assert only_failed["total"] == len(only_failed["tasks"])

    two = (await get(api, "/api/tasks?status=paused&status=pending")).data
    assert [t["id"] for t in two["tasks"]] == [paused, pending]
    assert [t["queue_position"] for t in two["tasks"]] == [None, 1]

    builds = (await get(api, "/api/tasks?task_type=docker_build&status=completed")).data
    assert completed in {t["id"] for t in builds["tasks"]}
    assert {t["task_type"] for t in builds["tasks"]} == {"docker_build"}

    page = (await get(api, "/api/tasks?limit=2&offset=1")).data
    assert [t["id"] for t in page["tasks"]] == ids[1:3]
    assert (page["total"], page["limit"], page["offset"]) == (everything["total"], 2, 1)
    beyond = (await get(api, f"/api/tasks?offset={everything['total']}")).data
    assert beyond["tasks"] == []
    assert "logs" not in page["tasks"][0]
    assert "logs" in (await get(api, "/api/tasks?limit=1&include_logs=true")).data["tasks"][0]

    for query, code in [
        ("status=finished", ErrorCode.VALIDATION_INVALID_PARAMS),
        ("task_type=docker_run", ErrorCode.VALIDATION_INVALID_PARAMS),
        ("limit=ten", ErrorCode.VALIDATION_INVALID_FORMAT),
        ("limit=0", ErrorCode.VALIDATION_INVALID_PARAMS),
        ("limit=5000", ErrorCode.VALIDATION_INVALID_PARAMS),
        ("offset=-1", ErrorCode.VALIDATION_INVALID_PARAMS),
        ("offset=99999999999999999999999", ErrorCode.VALIDATION_INVALID_PARAMS),
        ("limit=1&limit=2", ErrorCode.VALIDATION_INVALID_PARAMS),
        ("sort=newest", ErrorCode.VALIDATION_INVALID_PARAMS),
    ]:
        await api.refused(get(api, f"/api/tasks?{query}"), code, 400)


async def test_get_one_task(api: Api) -> None:
    task_id = await pull(api, wait=False)
    plain = (await get(api, f"/api/tasks/{task_id}")).data
    assert plain == await api.task(task_id)  # the same answer as queue_task_status
    assert plain["error"]["code"] == ErrorCode.DOCKER_NETWORK_ERROR
    assert "logs" not in plain
    full = (await get(api, f"/api/tasks/{task_id}?include_logs=true&detailed=1")).data
    assert isinstance(full["logs"], list)
    assert full["task"]["id"] == task_id

    await api.refused(get(api, f"/api/tasks/{uuid.uuid4()}"), ErrorCode.QUEUE_TASK_NOT_FOUND, 404)
    await api.refused(
        get(api, f"/api/tasks/{task_id}?detailed=maybe"), ErrorCode.VALIDATION_INVALID_FORMAT, 400
    )
    await api.refused(
        get(api, f"/api/tasks/{task_id}?task_id=other"), ErrorCode.VALIDATION_INVALID_PARAMS, 400
    )
    await api.refused(get(api, "/api/tasks/a/b"), ErrorCode.REQUEST_NOT_FOUND, 404)


async def test_submit(api: Api) -> None:
    await api.ok("queue_pause")
    tag = uuid.uuid4().hex[:12]
    params = {"image_name": UNREACHABLE, "tag": tag, "priority": "critical", "max_retries": 0}
    first = (await submit(api, "docker_pull", params)).data
    assert first["status"] == "pending"
    assert first["queue_position"] == 1
    twin = (await submit(api, "docker_pull", params)).data
    assert twin["merged_into"] == first["task_id"]
    task = (await get(api, f"/api/tasks/{first['task_id']}?detailed=true")).data["task"]
    assert task["params"] == {"image_name": UNREACHABLE, "tag": tag}
    assert task["priority"] == "critical"
    await api.request("POST", f"/api/tasks/{first['task_id']}/cancel")


async def test_a_submit_is_accepted_with_the_location_of_its_task(api: Api) -> None:
    """202 Accepted and Location: /api/tasks/{id}, which reads the task; a merged submit
    points at the task it joined, which does the work (its own record ends as merged)."""
    await api.ok("queue_pause")
    params = {"image_name": UNREACHABLE, "tag": uuid.uuid4().hex[:12], "max_retries": 0}
    first = await submit(api, "docker_pull", params)
    assert first.status == 202
    location = first.headers["Location"]
    assert location == f"/api/tasks/{first.data['task_id']}"
    followed = (await get(api, location)).data
    assert (followed["task_id"], followed["status"]["value"]) == (first.data["task_id"], "pending")

    twin = await submit(api, "docker_pull", params)
    assert (twin.status, twin.data["status"]) == (202, "merged")
    assert twin.data["task_id"] != first.data["task_id"]
    assert twin.headers["Location"] == location
    assert (await api.task(twin.data["task_id"]))["status"]["value"] == "merged"

    by_cmd = await api.cmd({"action": "docker_pull", "params": {**params, "tag": "other"}})
    assert by_cmd.status == 200  # /cmd keeps its contract, and says where the task is too
    assert by_cmd.headers["Location"] == f"/api/tasks/{by_cmd.data['task_id']}"
    assert "Location" not in (await api.cmd({"action": "queue_status"})).headers
    refused = await submit(api, "docker_pull", {"image_name": "Bad/Name"})
    assert refused.status == 400
    assert "Location" not in refused.headers
    for task_id in (first.data["task_id"], by_cmd.data["task_id"]):
        await api.request("POST", f"/api/tasks/{task_id}/cancel")


BAD_SUBMISSIONS: list[tuple[str, Any, ErrorCode]] = [
    ("not JSON", "docker_pull", ErrorCode.REQUEST_INVALID_JSON),
    ("no task_type", {"params": {"image_name": "a"}}, ErrorCode.VALIDATION_INVALID_PARAMS),
    (
        "not a task type",
        {"task_type": "queue_clear", "params": {}},
        ErrorCode.VALIDATION_INVALID_PARAMS,
    ),
    ("an array", [{"task_type": "docker_pull"}], ErrorCode.VALIDATION_INVALID_PARAMS),
    (
        "extra key",
        {"task_type": "docker_pull", "params": {"image_name": "a"}, "priority": "high"},
        ErrorCode.REQUEST_INVALID_MESSAGE,
    ),
    (
        "params an array",
        {"task_type": "docker_pull", "params": []},
        ErrorCode.VALIDATION_INVALID_FORMAT,
    ),
    ("no params", {"task_type": "docker_pull"}, ErrorCode.VALIDATION_MISSING_REQUIRED),
    (
        "unknown param",
        {"task_type": "docker_push", "params": {"image_name": "a", "digest": "x"}},
        ErrorCode.VALIDATION_INVALID_PARAMS,
    ),
    (
        "wrong type",
        {"task_type": "docker_build", "params": {"dockerfile": "FROM scratch", "no_cache": "yes"}},
        ErrorCode.VALIDATION_INVALID_FORMAT,
    ),
    (
        "invalid reference",
        {"task_type": "docker_pull", "params": {"image_name": "team/app:bad tag"}},
        ErrorCode.DOCKER_INVALID_REFERENCE,
    ),
]


@pytest.mark.parametrize(
    ("body", "code"), [pytest.param(b, c, id=name) for name, b, c in BAD_SUBMISSIONS]
)
async def test_bad_submission_creates_no_task(api: Api, body: Any, code: ErrorCode) -> None:
    before = await api.total_tasks()
    data = body if isinstance(body, str) else None
    answer = await (
        api.request("POST", "/api/tasks", data=data)
        if data is not None
        else api.request("POST", "/api/tasks", json_body=body)
    )
    assert answer.code == code.value, answer.describe()
    assert await api.total_tasks() == before


async def test_manage_routes(api: Api) -> None:
    await api.ok("queue_pause")
    task_id = await pull(api, wait=True)

    async def manage(action: str, query: str = "") -> Answer:
        return await api.request("POST", f"/api/tasks/{task_id}/{action}{query}")

    paused = (await manage("pause")).data
    assert (paused["action"], paused["task"]["status"]) == ("pause", "paused")
    await api.refused(manage("pause"), ErrorCode.QUEUE_TASK_ALREADY_PAUSED, 409)
    assert (await manage("resume")).data["task"]["status"] == "pending"
    await api.refused(manage("resume"), ErrorCode.QUEUE_TASK_NOT_PAUSED, 409)
    await api.refused(manage("retry"), ErrorCode.QUEUE_TASK_NOT_RETRYABLE, 409)
    assert (await manage("cancel")).data["task"]["status"] == "cancelled"
    await api.refused(manage("cancel"), ErrorCode.QUEUE_TASK_FINISHED, 409)
    await api.refused(manage("retry"), ErrorCode.QUEUE_RETRY_LIMIT_REACHED, 409)
    await api.refused(manage("retry", "?force=maybe"), ErrorCode.VALIDATION_INVALID_FORMAT, 400)
    await api.refused(manage("retry", "?action=cancel"), ErrorCode.VALIDATION_INVALID_PARAMS, 400)
    retried = (await manage("retry", "?force=true")).data["task"]
    assert (retried["status"], retried["retry_count"]) == ("pending", 1)
    await api.ok("queue_resume")
    assert (await api.finished(task_id))["status"]["value"] == "failed"

    await api.refused(
        api.request("POST", f"/api/tasks/{uuid.uuid4()}/pause"),
        ErrorCode.QUEUE_TASK_NOT_FOUND,
        404,
    )
    await api.refused(manage("delete"), ErrorCode.REQUEST_NOT_FOUND, 404)
    await api.refused(
        api.request("GET", f"/api/tasks/{task_id}/cancel"),
        ErrorCode.REQUEST_METHOD_NOT_ALLOWED,
        405,
    )


async def test_stats_and_commands(api: Api) -> None:
    await pull(api, wait=False)
    stats = (await get(api, "/api/stats")).data
    assert stats["summary"]["total_tasks"] == await api.total_tasks()
    assert stats["distributions"]["status"]["failed"] >= 1
    assert "tasks" not in stats
    detailed = (await get(api, "/api/stats?detailed=true&limit=5")).data
    assert set(detailed["tasks"]) == {"running", "pending", "paused"}
    await api.refused(
        get(api, "/api/stats?detailed=please"), ErrorCode.VALIDATION_INVALID_FORMAT, 400
    )
    await api.refused(get(api, "/api/stats?verbose=1"), ErrorCode.VALIDATION_INVALID_PARAMS, 400)

    listed = (await get(api, "/api/commands")).data["commands"]
    assert [c["name"] for c in listed] == REGISTRY.names()
    assert listed == (await api.ok("commands"))["commands"]
