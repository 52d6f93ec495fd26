"""``POST /cmd`` against a real agent (``ai-admin serve`` on a free port, the real Docker engine):
every command, the catalogue's examples replayed, and every kind of bad input answered with its
own code and status, with no task created or lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import schedule_cases
from agent_process import OPERATOR_TOKEN
from dockerenv import ImageCleanup
from http_client import Api
from wire_check import Validated

from ai_admin.commands import REGISTRY
from ai_admin.errors import ErrorCode

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("answers_as_documented")]

CATALOGUE = Path(__file__).resolve().parents[2] / "commands"
EXAMPLE_ID = "123e4567-e89b-12d3-a456-426614174000"
# The ids the catalogue's examples name (a task's and a batch's, a schedule's): nothing has them.
EXAMPLE_IDS = {EXAMPLE_ID, schedule_cases.SOME_SCHEDULE}
NOT_FOUND = {
    ErrorCode.QUEUE_TASK_NOT_FOUND.value,
    ErrorCode.BATCH_NOT_FOUND.value,
    ErrorCode.SCHEDULE_NOT_FOUND.value,
}
UNREACHABLE = "127.0.0.1:1/ai-admin-test/unreachable"  # refused at once: a quick failure
DEFAULT_CONCURRENCY = 4


@pytest.fixture(autouse=True)
async def _default_queue(api: Api) -> AsyncIterator[None]:
    yield
    # Whatever a test did to the shared agent's queue (conftest's ``agent``), the next one
    # starts from the default.
    await api.ok("queue_resume")
    await api.ok("queue_configure", max_concurrent=DEFAULT_CONCURRENCY)


async def failed_pull(api: Api) -> str:
    submitted = await api.ok(
        "docker_pull", image_name=UNREACHABLE, tag=uuid.uuid4().hex[:12], max_retries=0
    )
    state = await api.finished(submitted["task_id"])
    assert state["status"]["value"] == "failed", state
    return str(submitted["task_id"])


async def waiting_pull(api: Api) -> str:
    """A pull that waits in the queue: the caller has paused it."""
    submitted = await api.ok(
        "docker_pull", image_name=UNREACHABLE, tag=uuid.uuid4().hex[:12], max_retries=0
    )
    assert submitted["status"] == "pending"
    return str(submitted["task_id"])


async def completed_build(api: Api, cleanup: ImageCleanup) -> str:
    """A build that needs no base image and no registry: done in a moment."""
    dockerfile = f"FROM scratch\nLABEL org.ai-admin.test={uuid.uuid4().hex}\n"
    submitted = await api.ok("docker_build", dockerfile=dockerfile, max_retries=0)
    state = await api.finished(submitted["task_id"])
    assert state["status"]["value"] == "completed", state
    cleanup.add(state["result"]["image_id"])
    return str(submitted["task_id"])


# -- every command ---------------------------------------------------------------------------

Scenario = Callable[[Api, ImageCleanup], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[name] = fn
        return fn

    return register


@scenario("queue_status")
async def _queue_status(api: Api, cleanup: ImageCleanup) -> None:
    plain = await api.ok("queue_status")
    assert {"summary", "distributions", "performance", "retries", "recent_activity"} <= set(plain)
    assert plain["summary"]["max_concurrent"] == DEFAULT_CONCURRENCY
    assert "tasks" not in plain
    await api.ok("queue_pause")
    held = await waiting_pull(api)
    detailed = await api.ok("queue_status", detailed=True, include_logs=True)
    assert set(detailed["tasks"]) == {"running", "pending", "paused"}
    pending = {t["id"]: t for t in detailed["tasks"]["pending"]}
    assert pending[held]["queue_position"] >= 1
    assert "logs" in pending[held]
    await api.ok("queue_manage", action="cancel", task_id=held)


@scenario("queue_task_status")
async def _queue_task_status(api: Api, cleanup: ImageCleanup) -> None:
    task_id = await failed_pull(api)
    data = await api.ok("queue_task_status", task_id=task_id, include_logs=True, detailed=True)
    assert data["task_id"] == task_id
    assert data["task_type"] == "docker_pull"
    assert data["status"]["value"] == "failed"
    assert data["status"]["description"]
    assert data["error"]["code"] == ErrorCode.DOCKER_NETWORK_ERROR
    assert data["error"]["description"]
    assert data["error"]["suggestions"]
    assert data["retry"] == {
        "retry_count": 0,
        "max_retries": 0,
        "can_retry": False,
        "next_attempt_at": None,
    }
    assert isinstance(data["logs"], list)
    assert data["task"]["id"] == task_id
    brief = await api.ok("queue_task_status", task_id=task_id)
    assert "logs" not in brief
    assert "task" not in brief


@scenario("queue_list_tasks")
async def _queue_list_tasks(api: Api, cleanup: ImageCleanup) -> None:
    task_id = await failed_pull(api)
    data = await api.ok("queue_list_tasks", status=["failed"], task_type="docker_pull", limit=5)
    assert data["tasks"][0]["id"] == task_id  # newest first
    assert all(t["status"] == "failed" for t in data["tasks"])
    assert data["total"] >= 1
    assert data["limit"] == 5
    assert data["offset"] == 0


@scenario("queue_manage")
async def _queue_manage(api: Api, cleanup: ImageCleanup) -> None:
    await api.ok("queue_pause")
    task_id = await waiting_pull(api)
    for action, status in [("pause", "paused"), ("resume", "pending"), ("cancel", "cancelled")]:
        data = await api.ok("queue_manage", action=action, task_id=task_id)
        assert (data["task_id"], data["action"], data["task"]["status"]) == (
            task_id,
            action,
            status,
        )
    retried = await api.ok("queue_manage", action="retry", task_id=task_id, force=True)
    assert retried["task"]["status"] == "pending"
    assert retried["task"]["retry_count"] == 1
    await api.ok("queue_manage", action="cancel", task_id=task_id)


@scenario("queue_pause")
async def _queue_pause(api: Api, cleanup: ImageCleanup) -> None:
    assert await api.ok("queue_pause") == {"queue": "default", "paused": True}
    assert (await api.ok("queue_status"))["queue"]["paused"] is True


@scenario("queue_resume")
async def _queue_resume(api: Api, cleanup: ImageCleanup) -> None:
    await api.ok("queue_pause")
    assert await api.ok("queue_resume") == {"queue": "default", "paused": False}
    assert (await api.ok("queue_status"))["queue"]["paused"] is False


@scenario("queue_clear")
async def _queue_clear(api: Api, cleanup: ImageCleanup) -> None:
    done = await completed_build(api, cleanup)
    failed = await failed_pull(api)
    cleared = await api.ok("queue_clear")
    assert cleared["deleted"] >= 1
    await api.refused(
        api.cmd({"action": "queue_task_status", "params": {"task_id": done}}),
        ErrorCode.QUEUE_TASK_NOT_FOUND,
        404,
    )
    assert (await api.task(failed))["status"]["value"] == "failed"  # kept without the flag
    assert (await api.ok("queue_clear", include_failed=True))["deleted"] >= 1
    assert failed not in await api.task_ids()


@scenario("queue_metrics")
async def _queue_metrics(api: Api, cleanup: ImageCleanup) -> None:
    before = await api.ok("queue_metrics")
    await failed_pull(api)
    after = await api.ok("queue_metrics")
    assert after["enqueued"] == before["enqueued"] + 1
    assert after["failed"] == before["failed"] + 1
    assert after["paused"] is False


@scenario("queue_export")
async def _queue_export(api: Api, cleanup: ImageCleanup) -> None:
    await failed_pull(api)
    data = await api.ok("queue_export", what="all", limit=10)
    assert set(data) == {"jobs", "total_jobs", "metrics", "config"}
    assert 1 <= len(data["jobs"]) <= 10
    assert data["total_jobs"] >= len(data["jobs"])
    assert data["config"]["token_configured"] is True
    assert OPERATOR_TOKEN not in json.dumps(data)


@scenario("queue_configure")
async def _queue_configure(api: Api, cleanup: ImageCleanup) -> None:
    shown = await api.ok("queue_configure")
    assert shown["changed"] == []
    assert shown["settings"]["max_concurrent"] == DEFAULT_CONCURRENCY
    changed = await api.ok("queue_configure", max_concurrent=2)
    assert changed == {"changed": ["max_concurrent"], "settings": changed["settings"]}
    assert (await api.ok("queue_status"))["summary"]["max_concurrent"] == 2


@scenario("commands")
async def _commands(api: Api, cleanup: ImageCleanup) -> None:
    listed = (await api.ok("commands"))["commands"]
    assert [c["name"] for c in listed] == REGISTRY.names()
    assert all(c["params_schema"]["type"] == "object" and c["example"] for c in listed)


@scenario("docker_build")
async def _docker_build(api: Api, cleanup: ImageCleanup) -> None:
    task_id = await completed_build(api, cleanup)
    state = await api.task(task_id)
    assert state["progress"] == 100
    assert state["result"]["image_id"].startswith("sha256:")


@scenario("docker_push")
async def _docker_push(api: Api, cleanup: ImageCleanup) -> None:
    missing = f"ai-admin-test/not-built-{uuid.uuid4().hex[:8]}"
    submitted = await api.ok("docker_push", image_name=missing, tag="1", max_retries=0)
    assert submitted["status"] == "pending"
    assert submitted["merged_into"] is None
    state = await api.finished(submitted["task_id"])
    assert state["status"]["value"] == "failed"
    assert state["error"]["code"] == ErrorCode.DOCKER_IMAGE_NOT_FOUND


@scenario("docker_pull")
async def _docker_pull(api: Api, cleanup: ImageCleanup) -> None:
    await api.ok("queue_pause")
    tag = uuid.uuid4().hex[:12]
    first = await api.ok(
        "docker_pull", image_name=UNREACHABLE, tag=tag, priority="high", max_retries=0
    )
    assert first["status"] == "pending"
    assert first["queue_position"] == 1
    twin = await api.ok("docker_pull", image_name=UNREACHABLE, tag=tag, priority="high")
    assert twin["status"] == "merged"
    assert twin["merged_into"] == first["task_id"]
    await api.ok("queue_resume")
    state = await api.finished(first["task_id"])
    assert state["error"]["code"] == ErrorCode.DOCKER_NETWORK_ERROR


def _pull_message(tag: str) -> dict[str, Any]:
    return {"action": "docker_pull", "params": {"image_name": UNREACHABLE, "tag": tag}}


async def _held_batch(api: Api) -> dict[str, Any]:
    """A batch of two pulls that cannot start: the default queue is paused."""
    await api.ok("queue_pause")
    tags = [uuid.uuid4().hex[:12] for _ in range(2)]
    batch: dict[str, Any] = await api.ok(
        "batch_submit", tasks=[_pull_message(t) for t in tags], name="held"
    )
    return batch


@scenario("batch_submit")
async def _batch_submit(api: Api, cleanup: ImageCleanup) -> None:
    batch = await _held_batch(api)
    assert batch["state"] == "running"  # the first of its line; its queue is paused
    assert len(batch["task_ids"]) == 2
    await api.ok("batch_cancel", batch_id=batch["batch_id"])


@scenario("batch_status")
async def _batch_status(api: Api, cleanup: ImageCleanup) -> None:
    batch = await _held_batch(api)
    status = await api.ok("batch_status", batch_id=batch["batch_id"])
    assert (status["counts"], status["progress"]) == ({"pending": 2}, 0.0)
    await api.ok("batch_cancel", batch_id=batch["batch_id"])


@scenario("batch_list")
async def _batch_list(api: Api, cleanup: ImageCleanup) -> None:
    batch = await _held_batch(api)
    listed = await api.ok("batch_list", queue="default")
    assert listed["batches"][0]["batch_id"] == batch["batch_id"]  # newest first
    await api.ok("batch_cancel", batch_id=batch["batch_id"])


@scenario("batch_stop")
async def _batch_stop(api: Api, cleanup: ImageCleanup) -> None:
    batch = await _held_batch(api)
    assert (await api.ok("batch_stop", batch_id=batch["batch_id"]))["state"] == "stopped"
    await api.ok("batch_cancel", batch_id=batch["batch_id"])


@scenario("batch_start")
async def _batch_start(api: Api, cleanup: ImageCleanup) -> None:
    batch = await _held_batch(api)
    await api.ok("batch_stop", batch_id=batch["batch_id"])
    assert (await api.ok("batch_start", batch_id=batch["batch_id"]))["state"] == "running"
    await api.ok("batch_cancel", batch_id=batch["batch_id"])


@scenario("batch_move")
async def _batch_move(api: Api, cleanup: ImageCleanup) -> None:
    first = await _held_batch(api)
    second = await _held_batch(api)
    third = await _held_batch(api)
    moved = await api.ok("batch_move", batch_id=third["batch_id"], position=1)
    assert moved["position"] == 1
    assert (await api.ok("batch_status", batch_id=second["batch_id"]))["position"] == 2
    for batch in (first, second, third):
        await api.ok("batch_cancel", batch_id=batch["batch_id"])


@scenario("batch_cancel")
async def _batch_cancel(api: Api, cleanup: ImageCleanup) -> None:
    batch = await _held_batch(api)
    cancelled = await api.ok("batch_cancel", batch_id=batch["batch_id"])
    assert (cancelled["state"], cancelled["counts"]) == ("cancelled", {"cancelled": 2})


@scenario("batch_remove")
async def _batch_remove(api: Api, cleanup: ImageCleanup) -> None:
    batch = await _held_batch(api)
    await api.ok("batch_cancel", batch_id=batch["batch_id"])
    assert (await api.ok("batch_remove", batch_id=batch["batch_id"]))["removed"] is True
    await api.refused(
        api.cmd({"action": "batch_status", "params": {"batch_id": batch["batch_id"]}}),
        ErrorCode.BATCH_NOT_FOUND,
        404,
    )


@scenario("queue_create")
async def _queue_create(api: Api, cleanup: ImageCleanup) -> None:
    name = f"made-{uuid.uuid4().hex[:6]}"
    made = await api.ok("queue_create", name=name, max_concurrent=1)
    assert (made["name"], made["limits"]["max_concurrent"], made["running"]) == (name, 1, 0)
    await api.ok("queue_delete", queue=name)


@scenario("queue_list")
async def _queue_list(api: Api, cleanup: ImageCleanup) -> None:
    listed = (await api.ok("queue_list"))["queues"]
    assert listed[0]["name"] == "default"
    assert listed[0]["limits"]["max_concurrent"] == DEFAULT_CONCURRENCY


@scenario("queue_delete")
async def _queue_delete(api: Api, cleanup: ImageCleanup) -> None:
    name = f"gone-{uuid.uuid4().hex[:6]}"
    await api.ok("queue_create", name=name)
    assert await api.ok("queue_delete", queue=name) == {"queue": name, "deleted": True}
    await api.refused(
        api.cmd({"action": "queue_pause", "params": {"queue": name}}),
        ErrorCode.QUEUE_NOT_FOUND,
        404,
    )


SCENARIOS.update(schedule_cases.SCENARIOS)


async def test_every_command_through_cmd(api: Api, image_cleanup: ImageCleanup) -> None:
    assert set(SCENARIOS) == set(REGISTRY.names()), "a command without a scenario here"
    for name in REGISTRY.names():
        await SCENARIOS[name](api, image_cleanup)
        await api.ok("queue_resume")
    validated = Validated()
    for answer in api.answers:
        validated.check_http(answer)
    assert validated.successes == set(REGISTRY.names()), "a command's answer was not checked"


# -- the catalogue ----------------------------------------------------------------------------


async def test_catalogue_examples_replayed(api: Api) -> None:
    await api.ok("queue_pause")  # queued examples wait, and are cancelled below
    paths = sorted(CATALOGUE.glob("*.json"))
    assert {p.stem for p in paths} == set(REGISTRY.names())
    for path in paths:
        message = json.loads(path.read_text())
        answer = await api.request("POST", "/cmd", data=path.read_bytes())
        assert answer.body["action"] == message["action"]
        if EXAMPLE_IDS & set(map(str, message["params"].values())):  # a task, batch, schedule
            assert answer.status == 404, answer.describe()
            assert answer.code in NOT_FOUND, answer.describe()
            continue
        assert answer.status == 200, answer.describe()
        if path.stem.startswith("docker_"):
            task_id = answer.data["task_id"]
            await api.ok("queue_manage", action="cancel", task_id=task_id)
        elif path.stem == "batch_submit":
            await api.ok("batch_cancel", batch_id=answer.data["batch_id"])
        elif path.stem == "schedule_create":
            await api.ok("schedule_delete", schedule_id=answer.data["schedule_id"])


# -- bad input --------------------------------------------------------------------------------

BIG = json.dumps({"action": "docker_build", "params": {"dockerfile": "#" * 1_100_000}})
DEEP = "[" * 100_000 + "]" * 100_000

BAD_INPUT: list[tuple[str, str, str, str | bytes, ErrorCode]] = [
    ("not JSON", "POST", "/cmd", "queue_status please", ErrorCode.REQUEST_INVALID_JSON),
    ("empty body", "POST", "/cmd", "", ErrorCode.REQUEST_INVALID_JSON),
    ("blank body", "POST", "/cmd", " \n ", ErrorCode.REQUEST_INVALID_JSON),
    ("not UTF-8", "POST", "/cmd", b'{"action": "\xff"}', ErrorCode.REQUEST_INVALID_JSON),
    ("NaN", "POST", "/cmd", '{"action": "queue_status", "x": NaN}', ErrorCode.REQUEST_INVALID_JSON),
    ("nested too deeply", "POST", "/cmd", DEEP, ErrorCode.REQUEST_INVALID_JSON),
    (
        "a JSON array",
        "POST",
        "/cmd",
        '[{"action": "queue_status"}]',
        ErrorCode.REQUEST_INVALID_MESSAGE,
    ),
    ("a JSON string", "POST", "/cmd", '"queue_status"', ErrorCode.REQUEST_INVALID_MESSAGE),
    ("missing action", "POST", "/cmd", '{"params": {}}', ErrorCode.REQUEST_INVALID_MESSAGE),
    ("action not a string", "POST", "/cmd", '{"action": 1}', ErrorCode.REQUEST_INVALID_MESSAGE),
    (
        "unknown action",
        "POST",
        "/cmd",
        '{"action": "docker_pul"}',
        ErrorCode.REQUEST_UNKNOWN_ACTION,
    ),
    (
        "extra top-level key",
        "POST",
        "/cmd",
        '{"action": "docker_pull", "params": {"image_name": "a"}, "priority": "high"}',
        ErrorCode.REQUEST_INVALID_MESSAGE,
    ),
    (
        "params not an object",
        "POST",
        "/cmd",
        '{"action": "docker_pull", "params": ["a"]}',
        ErrorCode.VALIDATION_INVALID_FORMAT,
    ),
    (
        "unknown param",
        "POST",
        "/cmd",
        '{"action": "docker_pull", "params": {"image_name": "a", "force": true}}',
        ErrorCode.VALIDATION_INVALID_PARAMS,
    ),
    (
        "wrong type",
        "POST",
        "/cmd",
        '{"action": "docker_pull", "params": {"image_name": "a", "max_retries": "3"}}',
        ErrorCode.VALIDATION_INVALID_FORMAT,
    ),
    (
        "missing required",
        "POST",
        "/cmd",
        '{"action": "docker_push", "params": {"tag": "1"}}',
        ErrorCode.VALIDATION_MISSING_REQUIRED,
    ),
    (
        "invalid image reference",
        "POST",
        "/cmd",
        '{"action": "docker_pull", "params": {"image_name": "Team/App:1"}}',
        ErrorCode.DOCKER_INVALID_REFERENCE,
    ),
    (
        "task id that does not exist",
        "POST",
        "/cmd",
        json.dumps({"action": "queue_task_status", "params": {"task_id": EXAMPLE_ID}}),
        ErrorCode.QUEUE_TASK_NOT_FOUND,
    ),
    ("oversized body", "POST", "/cmd", BIG, ErrorCode.REQUEST_TOO_LARGE),
    (
        "unknown route",
        "POST",
        "/command",
        '{"action": "queue_status"}',
        ErrorCode.REQUEST_NOT_FOUND,
    ),
    (
        "wrong method",
        "PUT",
        "/cmd",
        '{"action": "queue_status"}',
        ErrorCode.REQUEST_METHOD_NOT_ALLOWED,
    ),
    ("GET /cmd", "GET", "/cmd", "", ErrorCode.REQUEST_METHOD_NOT_ALLOWED),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [pytest.param(m, p, b, c, id=name) for name, m, p, b, c in BAD_INPUT],
)
async def test_bad_input_gets_its_own_code_and_creates_no_task(
    api: Api, method: str, path: str, body: str | bytes, code: ErrorCode
) -> None:
    before_total, before_ids = await api.total_tasks(), await api.task_ids()
    answer = await api.request(
        method, path, data=body, headers={"Content-Type": "application/json"}
    )
    assert answer.code == code.value, answer.describe()
    assert answer.body["success"] is False
    error = answer.body["error"]
    assert error["suggestions"], "a bad request is told what to send instead"
    if code is ErrorCode.REQUEST_UNKNOWN_ACTION:
        assert "docker_pull" in error["suggestions"][0]
    if code is ErrorCode.REQUEST_METHOD_NOT_ALLOWED:
        assert answer.headers["Allow"] == "POST"
        assert error["details"]["allowed_methods"] == ["POST"]
    assert await api.total_tasks() == before_total
    assert await api.task_ids() == before_ids


async def test_refused_transitions_answer_409_with_their_code(api: Api) -> None:
    async def manage(action: str, task_id: str, **extra: Any) -> Any:
        params = {"action": action, "task_id": task_id, **extra}
        return await api.cmd({"action": "queue_manage", "params": params})

    failed = await failed_pull(api)
    await api.refused(manage("pause", failed), ErrorCode.QUEUE_TASK_FINISHED, 409)
    await api.refused(manage("resume", failed), ErrorCode.QUEUE_TASK_FINISHED, 409)
    await api.refused(manage("retry", failed), ErrorCode.QUEUE_RETRY_LIMIT_REACHED, 409)

    await api.ok("queue_pause")
    waiting = await waiting_pull(api)
    await api.refused(manage("resume", waiting), ErrorCode.QUEUE_TASK_NOT_PAUSED, 409)
    await api.refused(manage("retry", waiting), ErrorCode.QUEUE_TASK_NOT_RETRYABLE, 409)
    assert (await manage("pause", waiting)).status == 200
    refused = await api.refused(manage("pause", waiting), ErrorCode.QUEUE_TASK_ALREADY_PAUSED, 409)
    assert refused.body["error"]["details"]["status"] == "paused"
    assert (await manage("cancel", waiting)).status == 200
    await api.refused(manage("cancel", waiting), ErrorCode.QUEUE_TASK_FINISHED, 409)
    assert (await api.task(waiting))["status"]["value"] == "cancelled"
