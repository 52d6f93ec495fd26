"""Commands for schedules: schedule_create, schedule_list, schedule_get, schedule_pause,
schedule_resume, schedule_delete (``docs/schedules.md``).

A schedule's ``command`` is a command message that submits a task (docker_build, docker_push,
docker_pull), validated now by that command's own params model. What depends on the agent's
files or configuration at the time (a build's context directory, its network mode) is checked
when each firing's task runs: the directory may not exist yet when the schedule is made.
Per-task credentials (``auth``) are refused: a schedule runs with the agent's own Docker login
and never stores a secret.

The OpenAPI request schema of ``schedule_create`` states every rule its validation applies
(``SCHEMA_RULES``), so a request the document allows is never refused.
"""

from __future__ import annotations

import zoneinfo
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ai_admin.commands.docker_commands import QueueOptions, task_of
from ai_admin.commands.registry import REGISTRY, NoParams
from ai_admin.errors import InvalidParams
from ai_admin.queue.models import TaskType
from ai_admin.queue.secrets import SECRET_NAME_PARTS
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


# What the agent takes in each cron field: *, */N (N of 1-9), or a number or comma list of numbers
# in the field's range (minute hour day-of-month month day-of-week, Sunday 0).
_STEP = r"\*(/[1-9])?"
_MINUTE = r"[1-5]?[0-9]"
_HOUR = r"(1?[0-9]|2[0-3])"
_DAY = r"([1-9]|[12][0-9]|3[01])"
_MONTH = r"([1-9]|1[0-2])"
_WEEKDAY = r"[0-6]"


def _field(number: str) -> str:
    return rf"({_STEP}|{number}(,{number}){{0,9}})"


CRON_PATTERN = "^" + " ".join(_field(n) for n in (_MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY)) + "$"
# A calendar date (never 29 February) and time, with an optional UTC offset or Z.
_DATE = (
    r"[0-9]{3}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    r"|02-(0[1-9]|1[0-9]|2[0-8]))"
)
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
AT_PATTERN = rf"^[12]{_DATE}T{_TIME}(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])?$"
# JSON Schema patterns have no case-insensitive flag: each letter as a class.
_SECRET_NAME = "|".join(
    "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in part)
    for part in SECRET_NAME_PARTS
)
_NO_AUTH = {"properties": {"auth": {"type": "null"}}}
_NO_SECRET_BUILD_ARGS = {
    "properties": {
        "build_args": {
            "patternProperties": {_SECRET_NAME: {"not": {"type": "string", "minLength": 1}}},
            "additionalProperties": {
                "not": {
                    "anyOf": [
                        {"const": "***"},
                        {"type": "string", "pattern": r"://[^\s@:/]{0,256}:[^\s@]{0,256}@"},
                    ]
                }
            },
        }
    }
}
_MODELS = {"docker_pull": "DockerPullCommand", "docker_push": "DockerPushCommand"}


def _command_rule(action: str, *extra: dict[str, Any]) -> dict[str, Any]:
    model = _MODELS.get(action, "DockerBuildCommand")
    return {
        "required": ["action", "params"],
        "properties": {
            "action": {"const": action},
            "params": {"allOf": [{"$ref": f"#/components/schemas/{model}"}, _NO_AUTH, *extra]},
        },
    }


def _only(field: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``field`` given (not null), the other two of cron, interval_s and at not."""
    others = [f for f in ("cron", "interval_s", "at") if f != field]
    return {
        "required": [field],
        "properties": {field: schema, **{o: {"type": "null"} for o in others}},
    }


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
    # For the OpenAPI request schema (kept out of the params schema, as assistants' tool APIs
    # refuse a combinator at its root): the rules across fields and the agent's time zones.
    SCHEMA_RULES: ClassVar[tuple[dict[str, Any], ...]] = (
        {
            "anyOf": [
                _only("cron", {"type": "string"}),
                _only("interval_s", {"type": "number"}),
                _only("at", {"type": "string"}),
            ]
        },
        {"properties": {"timezone": {"enum": sorted(zoneinfo.available_timezones())}}},
        {
            "properties": {
                "command": {
                    "anyOf": [
                        _command_rule("docker_pull"),
                        _command_rule("docker_push"),
                        _command_rule("docker_build", _NO_SECRET_BUILD_ARGS),
                    ]
                }
            }
        },
    )

    name: str = Field(min_length=1, max_length=200, description="A name for people.")
    command: ScheduledCommand = Field(description="The command message each firing submits.")
    cron: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=CRON_PATTERN,
        description="Five fields: minute hour day-of-month month day-of-week ('0 3 * * *'); "
        "each *, */N or numbers separated by commas.",
    )
    interval_s: float | None = Field(
        None, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S, description="Seconds between firings."
    )
    at: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=AT_PATTERN,
        description="One ISO 8601 time to fire at (without an offset: in timezone); one "
        "already past fires at once.",
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
