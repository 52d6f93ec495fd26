"""The dispatcher and every command, with a real queue (SQLite store) and fake executors.

What a client of any door relies on: one envelope for every answer, a specific code and HTTP
status for each kind of bad message, nothing queued by a refused one, and commands that do what
their descriptions say.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pydantic_core
import pytest
from pydantic import BaseModel
from queue_helpers import Work, executors_for, make_settings, within

from ai_admin.agent import Agent
from ai_admin.commands import REGISTRY, Dispatcher, Reply
from ai_admin.commands.registry import NoParams, Registry
from ai_admin.errors import ErrorCode, ExecutionError, code_info
from ai_admin.python_api import TaskQueue
from ai_admin.queue.models import TaskStatus
from ai_admin.queue.sqlite_store import SqliteStore

EXAMPLE_ID = "123e4567-e89b-12d3-a456-426614174000"
READ_ONLY = {
    "queue_status",
    "queue_task_status",
    "queue_list_tasks",
    "queue_metrics",
    "queue_export",
    "queue_list",
    "batch_status",
    "batch_list",
    "schedule_list",
    "schedule_get",
    "commands",
}


class Harness:
    def __init__(self, agent: Agent, work: Work) -> None:
        self.agent = agent
        self.work = work
        self.dispatcher = Dispatcher(agent)

    async def send(self, message: Any, *, can_write: bool = True) -> Reply:
        reply = await within(self.dispatcher.dispatch(message, can_write=can_write))
        check(reply)
        return reply

    async def ok(self, action: str, /, **params: Any) -> dict[str, Any]:
        reply = await self.send({"action": action, "params": params})
        assert reply.success, reply.envelope
        data: dict[str, Any] = reply.envelope["data"]
        return data

    async def refused(self, message: Any, code: ErrorCode, status: int) -> dict[str, Any]:
        reply = await self.send(message)
        error: dict[str, Any] = reply.envelope.get("error", {})
        assert (reply.status, error.get("code")) == (status, code.value), reply.envelope
        return error

    async def pull(self, name: str, **params: Any) -> str:
        data = await self.ok("docker_pull", image_name=f"test/{name}", **params)
        task_id: str = data["task_id"]
        return task_id

    async def status(self, task_id: str) -> str:
        data = await self.ok("queue_task_status", task_id=task_id)
        value: str = data["status"]["value"]
        return value

    async def total(self) -> int:
        return int((await self.ok("queue_status"))["summary"]["total_tasks"])


def check(reply: Reply) -> None:
    """The envelope of the contract, whatever the command did."""
    env = reply.envelope
    json.dumps(env, allow_nan=False)  # plain JSON data
    assert isinstance(env["success"], bool)
    assert env["action"] is None or isinstance(env["action"], str)
    if env["success"]:
        assert set(env) == {"success", "action", "data"}
        assert reply.status == 200
        assert isinstance(env["data"], dict)
    else:
        assert set(env) == {"success", "action", "error"}
        error = env["error"]
        assert set(error) == {"code", "message", "details", "suggestions"}
        assert reply.status == code_info(ErrorCode(error["code"])).http_status
        assert error["message"]
        assert error["suggestions"]
        assert "Traceback" not in json.dumps(env)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    work = Work()
    settings = make_settings(tmp_path, token="agent-secret-token", read_only_tokens=["ro-secret"])
    queue = TaskQueue(
        store=SqliteStore(tmp_path / "q.db"), executors=executors_for(work), settings=settings
    )
    agent = Agent(settings, queue=queue)
    yield Harness(agent, work)
    work.release()
    await within(agent.stop())


# -- the message ---------------------------------------------------------------------------------

BAD_MESSAGES: list[tuple[str, Any, ErrorCode, str | None]] = [
    ("an array", [{"action": "queue_status"}], ErrorCode.REQUEST_INVALID_MESSAGE, None),
    ("a string", "queue_status", ErrorCode.REQUEST_INVALID_MESSAGE, None),
    ("null", None, ErrorCode.REQUEST_INVALID_MESSAGE, None),
    ("a number", 42, ErrorCode.REQUEST_INVALID_MESSAGE, None),
    ("no action", {"params": {}}, ErrorCode.REQUEST_INVALID_MESSAGE, None),
    ("empty action", {"action": ""}, ErrorCode.REQUEST_INVALID_MESSAGE, None),
    ("action not a string", {"action": ["queue_status"]}, ErrorCode.REQUEST_INVALID_MESSAGE, None),
    (
        "extra top-level key",
        {"action": "queue_status", "params": {}, "id": 1},
        ErrorCode.REQUEST_INVALID_MESSAGE,
        "queue_status",
    ),
    (
        "unknown action",
        {"action": "queue_stauts"},
        ErrorCode.REQUEST_UNKNOWN_ACTION,
        "queue_stauts",
    ),
    (
        "params an array",
        {"action": "queue_status", "params": [True]},
        ErrorCode.VALIDATION_INVALID_FORMAT,
        "queue_status",
    ),
    (
        "params a string",
        {"action": "queue_status", "params": "detailed"},
        ErrorCode.VALIDATION_INVALID_FORMAT,
        "queue_status",
    ),
    (
        "unknown param",
        {"action": "queue_status", "params": {"verbose": True}},
        ErrorCode.VALIDATION_INVALID_PARAMS,
        "queue_status",
    ),
    (
        "string for a boolean",
        {"action": "queue_status", "params": {"detailed": "yes"}},
        ErrorCode.VALIDATION_INVALID_FORMAT,
        "queue_status",
    ),
    (
        "number for a boolean",
        {"action": "queue_status", "params": {"include_logs": 1}},
        ErrorCode.VALIDATION_INVALID_FORMAT,
        "queue_status",
    ),
    (
        "string for an integer",
        {"action": "queue_list_tasks", "params": {"limit": "5"}},
        ErrorCode.VALIDATION_INVALID_FORMAT,
        "queue_list_tasks",
    ),
    (
        "number for a string",
        {"action": "queue_task_status", "params": {"task_id": 7}},
        ErrorCode.VALIDATION_INVALID_FORMAT,
        "queue_task_status",
    ),
    (
        "NaN",
        {"action": "queue_configure", "params": {"default_timeout_s": float("nan")}},
        ErrorCode.VALIDATION_INVALID_FORMAT,
        "queue_configure",
    ),
    (
        "infinity",
        {"action": "queue_configure", "params": {"retry_cap_s": float("inf")}},
        ErrorCode.VALIDATION_INVALID_FORMAT,
        "queue_configure",
    ),
    (
        "missing required",
        {"action": "queue_task_status", "params": {}},
        ErrorCode.VALIDATION_MISSING_REQUIRED,
        "queue_task_status",
    ),
    (
        "missing image",
        {"action": "docker_pull", "params": {"tag": "1"}},
        ErrorCode.VALIDATION_MISSING_REQUIRED,
        "docker_pull",
    ),
    (
        "out of range",
        {"action": "queue_list_tasks", "params": {"limit": 0}},
        ErrorCode.VALIDATION_INVALID_PARAMS,
        "queue_list_tasks",
    ),
    (
        "offset past SQLite's integers",
        {"action": "queue_list_tasks", "params": {"offset": 2**64}},
        ErrorCode.VALIDATION_INVALID_PARAMS,
        "queue_list_tasks",
    ),
    (
        "too many statuses",
        {"action": "queue_list_tasks", "params": {"status": ["failed"] * 40_000}},
        ErrorCode.VALIDATION_INVALID_PARAMS,
        "queue_list_tasks",
    ),
    (
        "unknown manage action",
        {"action": "queue_manage", "params": {"action": "delete", "task_id": "x"}},
        ErrorCode.VALIDATION_INVALID_PARAMS,
        "queue_manage",
    ),
    (
        "uppercase repository",
        {"action": "docker_pull", "params": {"image_name": "Team/App"}},
        ErrorCode.DOCKER_INVALID_REFERENCE,
        "docker_pull",
    ),
    (
        "bad tag",
        {"action": "docker_push", "params": {"image_name": "team/app", "tag": "-x"}},
        ErrorCode.DOCKER_INVALID_REFERENCE,
        "docker_push",
    ),
    (
        "bad build tag",
        {"action": "docker_build", "params": {"dockerfile": "FROM scratch", "tags": ["a b"]}},
        ErrorCode.DOCKER_INVALID_REFERENCE,
        "docker_build",
    ),
    (
        "build without a source",
        {"action": "docker_build", "params": {"tags": ["team/app"]}},
        ErrorCode.VALIDATION_INVALID_PARAMS,
        "docker_build",
    ),
    (
        "build context outside the allowed roots",
        {"action": "docker_build", "params": {"context_path": "/etc"}},
        ErrorCode.VALIDATION_PATH_NOT_ALLOWED,
        "docker_build",
    ),
    (
        "auth without a password",
        {"action": "docker_pull", "params": {"image_name": "a", "auth": {"username": "u"}}},
        ErrorCode.VALIDATION_INVALID_PARAMS,
        "docker_pull",
    ),
    (
        "unknown priority",
        {"action": "docker_pull", "params": {"image_name": "a", "priority": "urgent"}},
        ErrorCode.VALIDATION_INVALID_PARAMS,
        "docker_pull",
    ),
    (
        "task not found",
        {"action": "queue_task_status", "params": {"task_id": "no-such-task"}},
        ErrorCode.QUEUE_TASK_NOT_FOUND,
        "queue_task_status",
    ),
    (
        "manage a task that does not exist",
        {"action": "queue_manage", "params": {"action": "cancel", "task_id": EXAMPLE_ID}},
        ErrorCode.QUEUE_TASK_NOT_FOUND,
        "queue_manage",
    ),
]


@pytest.mark.parametrize(
    ("message", "code", "action"),
    [pytest.param(m, c, a, id=name) for name, m, c, a in BAD_MESSAGES],
)
async def test_bad_message_gets_its_code_and_queues_nothing(
    harness: Harness, message: Any, code: ErrorCode, action: str | None
) -> None:
    before = await harness.total()
    reply = await harness.send(message)
    assert not reply.success
    error = reply.envelope["error"]
    assert error["code"] == code.value, reply.envelope
    assert reply.status == code_info(code).http_status
    assert reply.envelope["action"] == action
    assert await harness.total() == before
    assert harness.work.starts == []


async def test_unknown_action_suggests_the_close_match(harness: Harness) -> None:
    error = await harness.refused({"action": "queue_stauts"}, ErrorCode.REQUEST_UNKNOWN_ACTION, 400)
    assert "queue_status" in error["suggestions"][0]
    assert set(error["details"]["known_actions"]) == set(REGISTRY.names())


async def test_validation_names_every_field_and_never_echoes_the_value(harness: Harness) -> None:
    secret = "s3cret-value-never-echoed"
    error = await harness.refused(
        {
            "action": "docker_push",
            "params": {"image_name": "Team/App", "auth": {"password": secret}, "oops": secret},
        },
        ErrorCode.DOCKER_INVALID_REFERENCE,
        400,
    )
    fields = {e["field"] for e in error["details"]["errors"]}
    assert {"params.image_name", "params.oops", "params.auth"} <= fields
    assert secret not in json.dumps(error)
    assert "'Team/App'" in error["message"]  # an image name is not a secret: say which


async def test_a_model_level_error_names_params_not_params_params(harness: Harness) -> None:
    error = await harness.refused(
        {"action": "queue_configure", "params": {"retry_base_s": 500}},
        ErrorCode.VALIDATION_INVALID_PARAMS,
        400,
    )
    assert error["details"]["errors"] == [
        {"field": "params", "problem": "retry_cap_s must be >= retry_base_s"}
    ]


async def test_params_may_be_left_out_or_null(harness: Harness) -> None:
    for message in ({"action": "queue_status"}, {"action": "queue_status", "params": None}):
        assert (await harness.send(message)).success


async def test_query_string_values_are_converted_when_not_strict(harness: Harness) -> None:
    command = REGISTRY.get("queue_list_tasks")
    assert command is not None
    lax = await harness.dispatcher.run(command, {"limit": "5", "status": ["failed"]}, strict=False)
    assert lax.success, lax.envelope
    assert lax.envelope["data"]["limit"] == 5
    strict = await harness.dispatcher.run(command, {"limit": "5"})
    assert strict.envelope["error"]["code"] == ErrorCode.VALIDATION_INVALID_FORMAT


async def test_a_failing_handler_is_an_internal_error_without_its_details(
    harness: Harness,
) -> None:
    registry = Registry()

    @registry.command("explode", NoParams, read_only=True)
    async def explode(agent: Agent, p: NoParams) -> dict[str, Any]:
        """Fails."""
        raise RuntimeError("database password is hunter2")

    dispatcher = Dispatcher(harness.agent, registry)
    reply = await dispatcher.dispatch({"action": "explode"})
    check(reply)
    assert reply.status == 500
    assert reply.envelope["error"]["code"] == ErrorCode.INTERNAL_ERROR
    assert "hunter2" not in json.dumps(reply.envelope)


@pytest.mark.parametrize("bad", ["\x00", "\ud800"], ids=["nul", "surrogate"])
@pytest.mark.parametrize("name", sorted(REGISTRY.names()))
async def test_bad_text_anywhere_in_params_is_refused_for_every_command(
    harness: Harness, name: str, bad: str
) -> None:
    command = REGISTRY.get(name)
    assert command is not None
    params = {**command.example, "nested": {"list": ["fine", f"a{bad}b"]}}
    error = await harness.refused(
        {"action": name, "params": params}, ErrorCode.VALIDATION_INVALID_FORMAT, 400
    )
    assert [e["field"] for e in error["details"]["errors"]] == ["params.nested.list.1"]
    assert harness.work.starts == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        # A NUL in context_path once failed deep in a system call: INTERNAL_ERROR, and the
        # traceback's values (the password among them) in the log.
        (
            {"context_path": "/srv/ctx\x00", "auth": {"username": "u", "password": "pw"}},
            "context_path",
        ),
        ({"dockerfile": "FROM x", "build_args": {"NPM_TOKEN": "t", "B": "\ud800"}}, "build_args.B"),
        ({"dockerfile": "FROM x", "labels": {"k": "v\x00"}}, "labels.k"),
        (
            {"dockerfile": "FROM x", "auth": {"username": "u", "password": "p\x00w"}},
            "auth.password",
        ),
    ],
)
async def test_bad_text_in_build_params_is_a_validation_error_naming_the_place(
    harness: Harness, params: dict[str, Any], field: str
) -> None:
    before = await harness.total()
    error = await harness.refused(
        {"action": "docker_build", "params": params}, ErrorCode.VALIDATION_INVALID_FORMAT, 400
    )
    assert [e["field"] for e in error["details"]["errors"]] == [f"params.{field}"]
    assert "pw" not in json.dumps(error)
    assert await harness.total() == before


async def test_a_nul_in_context_path_is_a_validation_error_not_an_internal_one(
    harness: Harness, tmp_path: Path
) -> None:
    # Under an allowed root, the path once reached the file system: ValueError, INTERNAL_ERROR.
    settings = harness.agent.settings
    harness.agent.settings = settings.model_copy(update={"allowed_roots": [tmp_path]})
    params = {"context_path": f"{tmp_path}/ctx\x00", "auth": {"username": "u", "password": "pw"}}
    error = await harness.refused(
        {"action": "docker_build", "params": params}, ErrorCode.VALIDATION_INVALID_FORMAT, 400
    )
    assert [e["field"] for e in error["details"]["errors"]] == ["params.context_path"]


@pytest.mark.parametrize("action", ["queue_status\x00", "\ud800queue", "x\udcff\x01"])
async def test_an_unknown_action_with_bad_text_is_echoed_printable(
    harness: Harness, action: str
) -> None:
    reply = await harness.send({"action": action})
    assert reply.envelope["error"]["code"] == ErrorCode.REQUEST_UNKNOWN_ACTION
    echoed = reply.envelope["action"]
    assert echoed.isprintable()
    assert reply.envelope["error"]["details"]["action"] == echoed
    pydantic_core.to_json(reply.envelope)  # strict UTF-8, as the MCP door serialises it


# -- who may run what ----------------------------------------------------------------------------


def test_the_read_only_commands_are_the_ones_that_change_nothing() -> None:
    assert {c.name for c in REGISTRY if c.read_only} == READ_ONLY


@pytest.mark.parametrize("name", sorted(REGISTRY.names()))
async def test_read_only_access(harness: Harness, name: str) -> None:
    command = REGISTRY.get(name)
    assert command is not None
    before = await harness.total()
    reply = await harness.send(command.example_message(), can_write=False)
    if command.read_only:
        assert reply.envelope.get("error", {}).get("code") != ErrorCode.AUTH_FORBIDDEN
    else:
        assert reply.status == 403, reply.envelope
        assert reply.envelope["error"]["code"] == ErrorCode.AUTH_FORBIDDEN
        assert name in reply.envelope["error"]["message"]
    assert await harness.total() == before
    assert not harness.agent.queue.paused


# -- the commands --------------------------------------------------------------------------------


async def test_submit_answers_id_status_position_and_merges_twins(harness: Harness) -> None:
    harness.agent.queue.pause_queue()
    first = await harness.ok("docker_pull", image_name="test/app", tag="1", priority="low")
    assert first["status"] == "pending"
    assert first["queue_position"] == 1
    assert first["merged_into"] is None
    second = await harness.ok("docker_push", image_name="test/app", tag="1", priority="high")
    assert second["queue_position"] == 1  # high runs before low
    twin = await harness.ok("docker_pull", image_name="test/app", tag="1")
    assert twin["status"] == "merged"
    assert twin["merged_into"] == first["task_id"]
    assert await harness.status(first["task_id"]) == "pending"
    task = (await harness.ok("queue_task_status", task_id=first["task_id"], detailed=True))["task"]
    assert task["params"] == {"image_name": "test/app", "tag": "1"}
    assert task["priority"] == "low"
    assert task["max_retries"] == harness.agent.settings.max_retries


async def test_build_push_and_pull_reach_their_executors(harness: Harness) -> None:
    harness.work.release()
    ids = [
        (await harness.ok("docker_build", dockerfile="FROM scratch\n", tags=["t/b"], timeout=60))[
            "task_id"
        ],
        (await harness.ok("docker_push", image_name="t/p", tag="2", max_retries=0))["task_id"],
        (await harness.ok("docker_pull", image_name="t/q@sha256:" + "a" * 64))["task_id"],
    ]
    for task_id in ids:
        done = await within(harness.agent.queue.wait_for(task_id))
        assert done.status is TaskStatus.COMPLETED
    build, push, pull = (harness.work.params[i] for i in ids)
    assert build["dockerfile"] == "FROM scratch\n"
    assert build["tags"] == ["t/b"]
    assert push == {"image_name": "t/p", "tag": "2", "all_tags": False}
    assert pull["image_name"] == "t/q@sha256:" + "a" * 64
    assert all("timeout" not in p and "priority" not in p for p in (build, push, pull))


async def test_queue_status_counts_and_lists_tasks_in_run_order(harness: Harness) -> None:
    harness.agent.queue.pause_queue()
    low = await harness.pull("low", priority="low")
    critical = await harness.pull("critical", priority="critical")
    paused = await harness.pull("held")
    await harness.ok("queue_manage", action="pause", task_id=paused)
    plain = await harness.ok("queue_status")
    assert "tasks" not in plain
    assert plain["summary"]["total_tasks"] == 3
    assert plain["summary"]["queue_size"] == 2
    assert plain["distributions"]["status"] == {"pending": 2, "paused": 1}
    assert plain["queue"]["paused"] is True
    detailed = await harness.ok("queue_status", detailed=True, include_logs=True)
    pending = detailed["tasks"]["pending"]
    assert [t["id"] for t in pending] == [critical, low]
    assert [t["queue_position"] for t in pending] == [1, 2]
    assert [t["id"] for t in detailed["tasks"]["paused"]] == [paused]
    assert all("logs" in t for t in pending)
    limited = await harness.ok("queue_status", detailed=True, limit=1)
    assert len(limited["tasks"]["pending"]) == 1


async def test_task_status_explains_a_failure(harness: Harness) -> None:
    task_id = await harness.pull("broken", max_retries=0)
    harness.work.fail(
        task_id,
        ExecutionError("registry said no", code=ErrorCode.DOCKER_AUTHENTICATION_FAILED),
    )
    await within(harness.agent.queue.wait_for(task_id))
    data = await harness.ok("queue_task_status", task_id=task_id, include_logs=True)
    assert data["status"] == {"value": "failed", "description": "Failed with an error"}
    error = data["error"]
    assert error["code"] == "DOCKER_AUTHENTICATION_FAILED"
    assert error["message"] == "registry said no"
    assert error["description"]
    assert error["suggestions"]
    assert data["retry"]["can_retry"] is False
    assert isinstance(data["logs"], list)
    assert "task" not in data
    without = await harness.ok("queue_task_status", task_id=task_id, detailed=True)
    assert "logs" not in without
    assert without["task"]["id"] == task_id
    assert without["task"]["error_code"] == error["code"]


async def test_manage_moves_tasks_and_refuses_with_specific_codes(harness: Harness) -> None:
    work = harness.work

    async def manage(action: str, task_id: str, **extra: Any) -> dict[str, Any]:
        return await harness.ok("queue_manage", action=action, task_id=task_id, **extra)

    async def refused(action: str, task_id: str, code: ErrorCode) -> None:
        message = {"action": "queue_manage", "params": {"action": action, "task_id": task_id}}
        error = await harness.refused(message, code, 409)
        assert error["details"]["task_id"] == task_id

    running = await harness.pull("running")
    await work.started(running)
    assert await harness.status(running) == "running"
    await refused("resume", running, ErrorCode.QUEUE_TASK_ALREADY_RUNNING)
    await refused("retry", running, ErrorCode.QUEUE_TASK_ALREADY_RUNNING)

    paused = await manage("pause", running)
    assert paused["task_id"] == running
    assert paused["action"] == "pause"
    assert paused["task"]["status"] == "paused"
    await refused("pause", running, ErrorCode.QUEUE_TASK_ALREADY_PAUSED)
    assert (await manage("resume", running))["task"]["status"] in {"pending", "running"}
    await work.started(running, times=2)

    cancelled = await manage("cancel", running)
    assert cancelled["task"]["status"] == "cancelled"
    await refused("cancel", running, ErrorCode.QUEUE_TASK_FINISHED)
    await refused("pause", running, ErrorCode.QUEUE_TASK_FINISHED)
    await refused("resume", running, ErrorCode.QUEUE_TASK_FINISHED)

    retried = await manage("retry", running)
    assert retried["task"]["status"] in {"pending", "running"}
    assert retried["task"]["retry_count"] == 1
    work.release()
    assert (await within(harness.agent.queue.wait_for(running))).status is TaskStatus.COMPLETED

    harness.agent.queue.pause_queue()
    waiting = await harness.pull("waiting", max_retries=0)
    await refused("resume", waiting, ErrorCode.QUEUE_TASK_NOT_PAUSED)
    await refused("retry", waiting, ErrorCode.QUEUE_TASK_NOT_RETRYABLE)
    await manage("cancel", waiting)
    await refused("retry", waiting, ErrorCode.QUEUE_RETRY_LIMIT_REACHED)
    forced = await manage("retry", waiting, force=True)
    assert forced["task"]["status"] == "pending"
    assert forced["task"]["queue_position"] == 1


async def test_queue_pause_and_resume(harness: Harness) -> None:
    harness.work.release()
    assert await harness.ok("queue_pause") == {"queue": "default", "paused": True}
    assert await harness.ok("queue_pause") == {"queue": "default", "paused": True}  # idempotent
    task_id = await harness.pull("held")
    assert (await harness.ok("queue_metrics"))["paused"] is True
    assert await harness.status(task_id) == "pending"
    assert await harness.ok("queue_resume") == {"queue": "default", "paused": False}
    assert (await within(harness.agent.queue.wait_for(task_id))).status is TaskStatus.COMPLETED


async def test_clear_deletes_finished_tasks_and_counts_them(harness: Harness) -> None:
    work, queue = harness.work, harness.agent.queue
    work.release()
    queue.pause_queue()
    done = [await harness.pull(f"done-{i}") for i in range(3)]
    merged = await harness.ok("docker_pull", image_name="test/done-0")
    assert merged["status"] == "merged"
    failed = await harness.pull("failed", max_retries=0)
    work.fail(failed, ExecutionError("no", code=ErrorCode.DOCKER_PULL_FAILED))
    queue.resume_queue()
    for task_id in [*done, failed]:
        await within(queue.wait_for(task_id))
    queue.pause_queue()
    waiting = await harness.pull("waiting")

    assert await harness.ok("queue_clear") == {"deleted": 4}  # 3 completed, 1 merged
    assert await harness.ok("queue_clear") == {"deleted": 0}
    assert await harness.status(failed) == "failed"
    assert await harness.ok("queue_clear", include_failed=True) == {"deleted": 1}
    assert await harness.status(waiting) == "pending"
    stats = await harness.ok("queue_status")
    assert stats["summary"]["total_tasks"] == 1
    assert stats["distributions"]["status"] == {"pending": 1}
    await harness.refused(
        {"action": "queue_task_status", "params": {"task_id": done[0]}},
        ErrorCode.QUEUE_TASK_NOT_FOUND,
        404,
    )


async def test_metrics_are_the_counters(harness: Harness) -> None:
    harness.work.release()
    task_id = await harness.pull("counted")
    await within(harness.agent.queue.wait_for(task_id))
    metrics = await harness.ok("queue_metrics")
    assert metrics["enqueued"] == 1
    assert metrics["completed"] == 1
    for key in ("dequeued", "failed", "timed_out", "cancelled", "retried", "merged"):
        assert metrics[key] == 0 or key == "dequeued"
    assert {"average_wait_seconds", "running", "queue_size", "paused"} <= set(metrics)


async def test_export_never_includes_a_token(harness: Harness) -> None:
    harness.work.release()
    await within(harness.agent.queue.wait_for(await harness.pull("exported")))
    everything = await harness.ok("queue_export")
    assert set(everything) == {"jobs", "total_jobs", "metrics", "config"}
    assert everything["total_jobs"] == 1
    assert len(everything["jobs"]) == 1
    assert everything["jobs"][0]["status"] == "completed"
    assert "logs" in everything["jobs"][0]
    assert everything["config"]["token_configured"] is True
    assert "token" not in everything["config"]
    text = json.dumps(everything)
    assert "agent-secret-token" not in text
    assert "ro-secret" not in text
    assert set(await harness.ok("queue_export", what="jobs")) == {"jobs", "total_jobs"}
    assert set(await harness.ok("queue_export", what="metrics")) == {"metrics"}
    assert set(await harness.ok("queue_export", what="config")) == {"config"}
    assert (await harness.ok("queue_export", what="jobs", offset=1))["jobs"] == []


async def test_configure_shows_validates_and_changes_concurrency_at_run_time(
    harness: Harness,
) -> None:
    shown = await harness.ok("queue_configure")
    assert shown["changed"] == []
    assert set(shown["settings"]) == {
        "max_concurrent",
        "max_queue_size",
        "default_timeout_s",
        "max_retries",
        "retry_base_s",
        "retry_factor",
        "retry_cap_s",
        "retry_jitter",
    }
    for params, code in [
        ({"max_concurrent": 0}, ErrorCode.VALIDATION_INVALID_PARAMS),
        ({"max_concurrent": 257}, ErrorCode.VALIDATION_INVALID_PARAMS),
        ({"max_concurrent": "2"}, ErrorCode.VALIDATION_INVALID_FORMAT),
        ({"retry_jitter": 2}, ErrorCode.VALIDATION_INVALID_PARAMS),
        ({"default_timeout_s": 0}, ErrorCode.VALIDATION_INVALID_PARAMS),
        ({"retry_base_s": 1000}, ErrorCode.VALIDATION_INVALID_PARAMS),
        ({"token": "x"}, ErrorCode.VALIDATION_INVALID_PARAMS),
    ]:
        await harness.refused({"action": "queue_configure", "params": params}, code, 400)
    assert await harness.ok("queue_configure") == shown  # nothing half-applied

    changed = await harness.ok("queue_configure", max_concurrent=1, max_retries=5)
    assert changed["changed"] == ["max_concurrent", "max_retries"]
    assert changed["settings"]["max_concurrent"] == 1
    work = harness.work
    ids = [await harness.pull(f"c{i}") for i in range(3)]
    await work.started(ids[0])
    summary = (await harness.ok("queue_status"))["summary"]
    assert (summary["running"], summary["queue_size"], summary["max_concurrent"]) == (1, 2, 1)
    task = (await harness.ok("queue_task_status", task_id=ids[2], detailed=True))["task"]
    assert task["max_retries"] == 5

    await harness.ok("queue_configure", max_concurrent=3)
    await work.wait_until(lambda: work.active == 3)
    assert (await harness.ok("queue_status"))["summary"]["running"] == 3


async def test_commands_lists_every_command_with_schema_and_example(harness: Harness) -> None:
    listed = (await harness.ok("commands"))["commands"]
    assert [c["name"] for c in listed] == REGISTRY.names()
    for entry in listed:
        command = REGISTRY.get(entry["name"])
        assert command is not None
        assert entry["description"].strip()
        assert len(entry["description"]) > 30
        assert entry["params_schema"]["type"] == "object"
        assert entry["params_schema"].get("additionalProperties") is False
        assert entry["example"] == {"action": entry["name"], "params": command.example}
        assert isinstance(command.params.model_validate(command.example), BaseModel)
        assert {"read_only", "destructive", "idempotent"} <= set(entry)
