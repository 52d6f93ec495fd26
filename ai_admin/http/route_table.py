"""Every HTTP route of the agent's own API, once: ``routes.add_routes`` registers them and
``openapi.document`` documents them, both from this table (``/mcp`` is mounted and documented
from ``ai_admin.mcp``'s ``MCP_PATH`` and ``MCP_METHODS``).

A command route names the command(s) it runs and where their params come from (the query
string, a whole command message, a submission, or the JSON body as the params themselves, as
``POST /api/schedules`` takes them); the other
routes (``/health``, ``/metrics``, ``/openapi.json``, ``/api/events``) name only themselves.
Paths are written as OpenAPI writes them: ``{task_id}`` is a path parameter.

Every route needs a bearer token except the two marked ``open``: ``/health`` (a probe has no
token) and ``/openapi.json`` (it holds no secret, and API tools read it before they hold one).
A submit answers ``202 Accepted`` with ``Location: /api/tasks/{task_id}`` (``task_location``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from ai_admin.commands.queue_commands import AGENT_ONLY_SETTINGS
from ai_admin.queue.models import SUBMIT_ACTIONS

__all__ = [
    "OPEN_PATHS",
    "ROUTES",
    "SCHEDULE_PATH",
    "SUBMITTABLE",
    "TASK_PATH",
    "Params",
    "Route",
    "task_location",
]

SUBMITTABLE = SUBMIT_ACTIONS
TASK_PATH = "/api/tasks/{task_id}"
SCHEDULE_PATH = "/api/schedules/{schedule_id}"
BATCH_PATH = "/api/batches/{batch_id}"
QUEUE_PATH = "/api/queues/{queue}"


def task_location(task_id: str) -> str:
    """The ``Location`` of a submitted task: the route that reads it."""
    return TASK_PATH.format(task_id=quote(task_id, safe=""))


class Params(StrEnum):
    """Where a command route's params come from."""

    MESSAGE = "message"  # the body is a whole command message: {"action", "params"}
    SUBMIT = "submit"  # the body is {"task_type": <a submitting command>, "params"}
    QUERY = "query"  # the query string, plus the path's parameters and the route's fixed ones
    BODY = "body"  # the JSON body is the params object, plus the path's parameters
    NONE = "none"  # not a command route


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str = ""  # for a command route, empty: its command's description
    commands: tuple[str, ...] = ()  # what it may run; empty for /cmd (every command)
    params: Params = Params.QUERY
    fixed: Mapping[str, str] = field(default_factory=dict)  # params the route itself sets
    body_excludes: tuple[str, ...] = ()  # params its body may not carry (besides the path's)
    open: bool = False  # answered without a token

    @property
    def command(self) -> str:
        """The one command a query route runs."""
        (name,) = self.commands
        return name

    @property
    def path_keys(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{(\w+)\}", self.path))


def _manage(action: str) -> Route:
    return Route(
        "POST",
        f"/api/tasks/{{task_id}}/{action}",
        f"{action}Task",
        "tasks",
        f"{action.capitalize()} a task (see queue_manage).",
        ("queue_manage",),
        fixed={"action": action},
    )


def _acting_on(path: str, tag: str, noun: str, action: str, **options: Any) -> Route:
    """``POST {path}/{action}``: the command ``{noun}_{action}`` on one batch, queue or
    schedule (its id from the path)."""
    operation = f"{action}{noun.capitalize()}"
    return Route(
        "POST", f"{path}/{action}", operation, tag, commands=(f"{noun}_{action}",), **options
    )


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/health",
        "getHealth",
        "agent",
        "Agent and Docker engine health (no token needed).",
        params=Params.NONE,
        open=True,
    ),
    Route(
        "POST", "/cmd", "runCommand", "commands", "Run any command message.", params=Params.MESSAGE
    ),
    Route("GET", "/api/tasks", "listTasks", "tasks", commands=("queue_list_tasks",)),
    Route(
        "POST",
        "/api/tasks",
        "submitTask",
        "tasks",
        "Submit a Docker task.",
        SUBMITTABLE,
        Params.SUBMIT,
    ),
    Route("GET", TASK_PATH, "getTask", "tasks", commands=("queue_task_status",)),
    *(_manage(action) for action in ("pause", "resume", "retry", "cancel")),
    Route("GET", "/api/stats", "getQueueStatus", "queue", commands=("queue_status",)),
    Route("GET", "/api/schedules", "listSchedules", "schedules", commands=("schedule_list",)),
    Route(
        "POST",
        "/api/schedules",
        "createSchedule",
        "schedules",
        commands=("schedule_create",),
        params=Params.BODY,
    ),
    Route("GET", SCHEDULE_PATH, "getSchedule", "schedules", commands=("schedule_get",)),
    Route("DELETE", SCHEDULE_PATH, "deleteSchedule", "schedules", commands=("schedule_delete",)),
    *(_acting_on(SCHEDULE_PATH, "schedules", "schedule", a) for a in ("pause", "resume")),
    Route("GET", "/api/batches", "listBatches", "batches", commands=("batch_list",)),
    Route(
        "POST",
        "/api/batches",
        "submitBatch",
        "batches",
        commands=("batch_submit",),
        params=Params.BODY,
    ),
    Route("GET", BATCH_PATH, "getBatch", "batches", commands=("batch_status",)),
    Route("DELETE", BATCH_PATH, "removeBatch", "batches", commands=("batch_remove",)),
    *(_acting_on(BATCH_PATH, "batches", "batch", a) for a in ("stop", "start", "cancel")),
    _acting_on(BATCH_PATH, "batches", "batch", "move", params=Params.BODY),
    Route("GET", "/api/queues", "listQueues", "queues", commands=("queue_list",)),
    Route(
        "POST",
        "/api/queues",
        "createQueue",
        "queues",
        commands=("queue_create",),
        params=Params.BODY,
    ),
    Route("GET", QUEUE_PATH, "getQueue", "queues", commands=("queue_status",)),
    Route("DELETE", QUEUE_PATH, "deleteQueue", "queues", commands=("queue_delete",)),
    *(_acting_on(QUEUE_PATH, "queues", "queue", a) for a in ("pause", "resume")),
    # a queue's own limits only: the retry backoff is the agent's
    _acting_on(
        QUEUE_PATH,
        "queues",
        "queue",
        "configure",
        params=Params.BODY,
        body_excludes=AGENT_ONLY_SETTINGS,
    ),
    _acting_on(QUEUE_PATH, "queues", "queue", "clear", params=Params.BODY),
    Route("GET", "/api/commands", "listCommands", "commands", commands=("commands",)),
    Route(
        "GET",
        "/api/events",
        "streamEvents",
        "events",
        "Task changes as server-sent events (all tasks, or one with task_id).",
        params=Params.NONE,
    ),
    Route("GET", "/metrics", "getMetrics", "agent", "Prometheus metrics.", params=Params.NONE),
    Route(
        "GET",
        "/openapi.json",
        "getOpenApi",
        "agent",
        "This document (no token needed: it holds no secret).",
        params=Params.NONE,
        open=True,
    ),
)
OPEN_PATHS = frozenset(route.path for route in ROUTES if route.open)
