"""The schedule commands through the dispatcher, with a real queue and fake executors: a
schedule's command is validated by its own command's params model when it is made, refused
with credentials, and answered in the documented shapes; an unknown id is SCHEDULE_NOT_FOUND."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from queue_helpers import Work, executors_for, make_settings, within

from ai_admin.agent import Agent
from ai_admin.commands import Dispatcher
from ai_admin.python_api import TaskQueue
from ai_admin.queue.models import DockerTask, TaskType
from ai_admin.queue.sqlite_store import SqliteStore
from ai_admin.wire.results import QueueMetrics
from ai_admin.wire.schedules import ScheduleDeleted, ScheduleList, ScheduleView

PULL = {"action": "docker_pull", "params": {"image_name": "127.0.0.1:5000/team/app", "tag": "1"}}
CANARY = "canary-pw-7Hq2"


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    settings = make_settings(tmp_path)
    queue = TaskQueue(SqliteStore(tmp_path / "q.db"), executors_for(Work(block=False)), settings)
    made = Agent(settings, queue=queue)
    yield made
    await within(made.stop())


@pytest.fixture
def send(agent: Agent) -> Any:
    dispatcher = Dispatcher(agent)

    async def run(action: str, **params: Any) -> tuple[int, dict[str, Any]]:
        reply = await dispatcher.dispatch({"action": action, "params": params})
        return reply.status, reply.envelope

    return run


def field_of(envelope: dict[str, Any]) -> str:
    return str(envelope["error"]["details"]["errors"][0]["field"])


async def test_a_schedule_is_made_read_paused_resumed_and_deleted(send: Any) -> None:
    status, made = await send("schedule_create", name="nightly", cron="0 3 * * *", command=PULL)
    assert status == 200, made
    view = ScheduleView.model_validate(made["data"])
    assert view.command == PULL  # kept as given
    assert (view.cron, view.timezone, view.paused, view.runs) == ("0 3 * * *", "UTC", False, 0)
    sid = view.schedule_id

    _, listed = await send("schedule_list")
    assert [s.schedule_id for s in ScheduleList.model_validate(listed["data"]).schedules] == [sid]
    _, paused = await send("schedule_pause", schedule_id=sid)
    assert ScheduleView.model_validate(paused["data"]).paused is True
    _, resumed = await send("schedule_resume", schedule_id=sid)
    assert ScheduleView.model_validate(resumed["data"]).next_run_at is not None
    _, deleted = await send("schedule_delete", schedule_id=sid)
    assert ScheduleDeleted.model_validate(deleted["data"]).schedule.schedule_id == sid

    for action in ("schedule_get", "schedule_pause", "schedule_resume", "schedule_delete"):
        status, gone = await send(action, schedule_id=sid)
        assert (status, gone["error"]["code"]) == (404, "SCHEDULE_NOT_FOUND")
        assert gone["error"]["details"] == {"schedule_id": sid}


async def test_credentials_are_refused_with_advice_and_never_echoed(send: Any) -> None:
    command = {
        "action": "docker_pull",
        "params": {"image_name": "team/app", "auth": {"username": "u", "password": CANARY}},
    }
    status, refused = await send("schedule_create", name="x", interval_s=60, command=command)
    assert (status, refused["error"]["code"]) == (400, "VALIDATION_INVALID_PARAMS")
    assert field_of(refused) == "params.command.params.auth"
    assert any("docker login" in s for s in refused["error"]["suggestions"])
    assert CANARY not in json.dumps(refused)
    _, listed = await send("schedule_list")
    assert listed["data"] == {"schedules": [], "total": 0}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cron": "0 25 * * *", "command": PULL}, "params.cron"),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus", "command": PULL}, "params.timezone"),
        ({"at": "not a time", "command": PULL}, "params.at"),
        ({"interval_s": 0.2, "command": PULL}, "params.interval_s"),
        ({"interval_s": 60, "cron": "* * * * *", "command": PULL}, "params.interval_s"),
        (
            {"interval_s": 60, "command": {"action": "docker_pull", "params": {"tag": "1"}}},
            "params.command.params.image_name",
        ),
        (
            {"interval_s": 60, "command": {"action": "queue_clear", "params": {}}},
            "params.command.action",
        ),
        (
            {"interval_s": 60, "command": {"action": "docker_push", "params": {"image_name": "a",
             "tag": "1", "all_tags": True}}},
            "params.command.params",
        ),
    ],
)  # fmt: skip
async def test_a_bad_schedule_names_the_field(
    send: Any, params: dict[str, Any], field: str
) -> None:
    status, refused = await send("schedule_create", name="bad", **params)
    assert status == 400, refused
    assert refused["error"]["code"].startswith("VALIDATION_")
    assert field_of(refused).startswith(field), refused


async def test_a_secret_build_arg_is_refused_too(send: Any) -> None:
    command = {
        "action": "docker_build",
        "params": {
            "dockerfile": "FROM scratch\n",
            "tags": ["a:1"],
            "build_args": {"NPM_TOKEN": CANARY},
        },
    }
    status, refused = await send("schedule_create", name="b", interval_s=60, command=command)
    assert status == 400
    assert field_of(refused) == "params.command.params"
    assert CANARY not in json.dumps(refused)


async def test_queue_metrics_historical_gives_trends_from_the_snapshots(
    agent: Agent, send: Any
) -> None:
    queue = agent.queue
    await queue.start()
    await queue.scheduler.take_snapshot()
    for n in range(3):
        task_id = await queue.add_task(
            DockerTask(task_type=TaskType.PULL, params={"image_name": f"i{n}"})
        )
        await queue.wait_for(task_id, timeout_s=10)
    await queue.scheduler.take_snapshot()
    status, plain = await send("queue_metrics")
    assert status == 200
    assert "history" not in plain["data"]
    status, answer = await send("queue_metrics", historical=True, days=1)
    assert status == 200, answer
    metrics = QueueMetrics.model_validate(answer["data"])
    assert metrics.history is not None
    (hour,) = metrics.history.hourly
    assert (hour.submitted, hour.completed, hour.failed) == (3, 3, 0)
    assert hour.mean_run_s is not None
    assert hour.mean_wait_s is not None
    assert sum(d.submitted for d in metrics.history.daily) == 3
