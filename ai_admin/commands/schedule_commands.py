"""Commands for schedules: schedule_create, schedule_list, schedule_get, schedule_pause,
schedule_resume, schedule_delete (``docs/schedules.md``).

A schedule's ``command`` is a command message that submits a task (docker_build, docker_push,
docker_pull), validated now by that command's own params model, so a schedule never fires a
message its command would refuse. Per-task credentials (``auth``) are refused: a schedule runs
with the agent's own Docker login and never stores a secret.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ai_admin.commands.docker_commands import DockerBuildCommand, QueueOptions, task_of
from ai_admin.commands.registry import REGISTRY, NoParams
from ai_admin.docker.build_context import read_dockerignore, resolve_context, resolve_dockerfile
from ai_admin.docker.build_options import check_network_mode
from ai_admin.errors import InvalidParams
from ai_admin.queue.models import TaskType
from ai_admin.schedule.spec import MAX_INTERVAL_S, MIN_INTERVAL_S
from ai_admin.validation import parse
from ai_admin.wire.schedules import ScheduleDeleted, ScheduleList, ScheduleView

if TYPE_CHECKING:
    from ai_admin.agent import Agent

SCHEDULABLE = ("docker_build", "docker_push", "docker_pull")
_EXAMPLE_ID = "sch-0123456789abcdef"
ScheduleId = Field(
    min_length=1, max_length=64, description="The schedule's id, as schedule_create returned it."
)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ScheduledCommand(_Params):
    action: Literal["docker_build", "docker_push", "docker_pull"] = Field(
        description="A command that submits a task."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Its params, as that command takes them; no auth (the agent's login is used).",
    )


class ScheduleCreateParams(_Params):
    name: str = Field(min_length=1, max_length=200, description="A name for people.")
    command: ScheduledCommand = Field(description="The command message each firing submits.")
    cron: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Five fields: minute hour day-of-month month day-of-week ('0 3 * * *').",
    )
    interval_s: float | None = Field(
        None, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S, description="Seconds between firings."
    )
    at: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="One ISO 8601 time to fire at once (without an offset: in timezone).",
    )
    timezone: str = Field(
        "UTC", min_length=1, max_length=64, description="IANA zone cron and at are read in."
    )


class ScheduleIdParams(_Params):
    schedule_id: str = ScheduleId


def _scheduled_task(agent: Agent, command: ScheduledCommand) -> Any:
    """The task the command asks for, validated as that command validates it."""
    if command.params.get("auth") is not None:
        raise InvalidParams(
            "Invalid parameters: params.command.params.auth: a schedule stores no credentials.",
            details={
                "errors": [
                    {
                        "field": "params.command.params.auth",
                        "problem": "a schedule stores no credentials",
                    }
                ]
            },
            suggestions=[
                "Leave auth out: a schedule runs with the agent's own Docker login.",
                "Log the agent's user in to the registry once: `docker login <registry>`.",
            ],
        )
    definition = REGISTRY.get(command.action)
    assert definition is not None, command.action
    params: QueueOptions = parse(definition.params, command.params, prefix="params.command.params.")
    return params


async def _check_build(agent: Agent, p: DockerBuildCommand) -> None:
    """What docker_build refuses before queueing, refused before scheduling too."""
    check_network_mode(p.network_mode, agent.settings.allowed_network_modes)
    if p.context_path is not None:

        def check() -> None:
            assert p.context_path is not None
            context = resolve_context(p.context_path, agent.settings.allowed_roots)
            read_dockerignore(context)
            if p.dockerfile is None:
                resolve_dockerfile(context, p.dockerfile_name)

        await asyncio.to_thread(check)


@REGISTRY.command(
    "schedule_create",
    ScheduleCreateParams,
    result=ScheduleView,
    example={
        "name": "nightly pull of the base image",
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "command": {
            "action": "docker_pull",
            "params": {"image_name": "127.0.0.1:5000/team/base", "tag": "latest"},
        },
    },
)
async def schedule_create(agent: Agent, p: ScheduleCreateParams) -> dict[str, Any]:
    """Schedule a command that submits a task (docker_build, docker_push or docker_pull) to
    run at each firing of exactly one of cron (five fields), interval_s or at (one ISO 8601
    time), in timezone (IANA, default UTC). The command is validated now; it may carry no auth
    (the agent's own Docker login is used). A firing while the last firing's task still waits
    or runs merges into it. Answers with the schedule: its id and next run."""
    params = _scheduled_task(agent, p.command)
    if isinstance(params, DockerBuildCommand):
        await _check_build(agent, params)
    task = task_of(TaskType(p.command.action), params)
    view = await agent.queue.schedule(
        task,
        name=p.name,
        command=p.command.model_dump(mode="json"),
        cron=p.cron,
        interval_s=p.interval_s,
        at=p.at,
        timezone=p.timezone,
    )
    return view.as_json()


@REGISTRY.command(
    "schedule_list", NoParams, result=ScheduleList, example={}, read_only=True, idempotent=True
)
async def schedule_list(agent: Agent, p: NoParams) -> dict[str, Any]:
    """Every schedule, oldest first: when each fires next, whether it is paused, and the id
    and outcome of the task its last firing submitted."""
    views = await agent.queue.list_schedules()
    return {"schedules": [v.as_json() for v in views], "total": len(views)}


@REGISTRY.command(
    "schedule_get",
    ScheduleIdParams,
    result=ScheduleView,
    example={"schedule_id": _EXAMPLE_ID},
    read_only=True,
    idempotent=True,
)
async def schedule_get(agent: Agent, p: ScheduleIdParams) -> dict[str, Any]:
    """One schedule: its trigger, next and last run, how many firings it made (and missed),
    and the last firing's task with its status now (merged: the task it joined)."""
    return (await agent.queue.get_schedule(p.schedule_id)).as_json()


@REGISTRY.command(
    "schedule_pause",
    ScheduleIdParams,
    result=ScheduleView,
    example={"schedule_id": _EXAMPLE_ID},
    idempotent=True,
)
async def schedule_pause(agent: Agent, p: ScheduleIdParams) -> dict[str, Any]:
    """Stop a schedule firing until it is resumed (a task it already submitted runs on).
    Pausing a paused schedule changes nothing."""
    return (await agent.queue.pause_schedule(p.schedule_id)).as_json()


@REGISTRY.command(
    "schedule_resume",
    ScheduleIdParams,
    result=ScheduleView,
    example={"schedule_id": _EXAMPLE_ID},
    idempotent=True,
)
async def schedule_resume(agent: Agent, p: ScheduleIdParams) -> dict[str, Any]:
    """Let a paused schedule fire again, from its next time after now (firings during the
    pause are not made up). Resuming a running schedule changes nothing."""
    return (await agent.queue.resume_schedule(p.schedule_id)).as_json()


@REGISTRY.command(
    "schedule_delete",
    ScheduleIdParams,
    result=ScheduleDeleted,
    example={"schedule_id": _EXAMPLE_ID},
    destructive=True,
)
async def schedule_delete(agent: Agent, p: ScheduleIdParams) -> dict[str, Any]:
    """Delete a schedule for good; the tasks it submitted stay. Answers with the schedule as
    it was."""
    view = await agent.queue.delete_schedule(p.schedule_id)
    return {"schedule_id": p.schedule_id, "deleted": True, "schedule": view.as_json()}
