"""Commands that read and manage the queue: status, task status, manage, pause, clear, ..."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ai_admin.commands.registry import REGISTRY, NoParams
from ai_admin.config import DEFAULT_QUEUE, QueueName, QueueSettings, Settings
from ai_admin.errors import InvalidParams
from ai_admin.queue import views
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.states import Action
from ai_admin.queue.store import TaskQuery
from ai_admin.wire.results import (
    Cleared,
    CommandList,
    Configured,
    Export,
    Managed,
    QueueMetrics,
    QueuePaused,
    QueueStatus,
    TaskList,
    TaskStatusResult,
)

if TYPE_CHECKING:
    from ai_admin.agent import Agent

_EXAMPLE_TASK_ID = "123e4567-e89b-12d3-a456-426614174000"
_MAX_OFFSET = 2**63 - 1  # SQLite's largest integer: a larger offset cannot reach the store
_FIRST_CHUNK = 16  # tasks read from the store at first; later reads fit what the budget has left
_MOST_CHUNK = 256
_ENVELOPE_BYTES = 4096  # the envelope and the small keys around a listing
TaskId = Field(min_length=1, max_length=128, description="The task's id, as returned on submit.")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


_ONE_QUEUE = Field(DEFAULT_QUEUE, description="The named queue (queue_list).")


class QueueParams(_Params):
    queue: QueueName = _ONE_QUEUE


class QueueStatusParams(_Params):
    queue: QueueName = Field(
        DEFAULT_QUEUE,
        description="The named queue whose limits, counts and (with detailed) tasks to show; "
        "the statistics are the agent's.",
    )
    include_logs: bool = Field(False, description="Include each listed task's log lines.")
    detailed: bool = Field(False, description="Also list running, waiting and paused tasks.")
    limit: int = Field(100, ge=1, le=1000, description="At most this many tasks per list.")


class TaskStatusParams(_Params):
    task_id: str = TaskId
    include_logs: bool = Field(False, description="Include the task's log lines.")
    detailed: bool = Field(False, description="Also include the full task record.")


class ManageParams(_Params):
    action: Literal["pause", "resume", "retry", "cancel"]
    task_id: str = TaskId
    force: bool = Field(False, description="retry: allow it past the task's max_retries.")


class ListParams(_Params):
    status: list[TaskStatus] | None = Field(
        None, max_length=len(TaskStatus), description="Only tasks in these statuses."
    )
    task_type: TaskType | None = None
    queue: QueueName | None = Field(
        None, description="Only this queue's tasks (all when left out)."
    )
    limit: int = Field(50, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=_MAX_OFFSET)
    include_logs: bool = False


class ClearParams(_Params):
    queue: QueueName | None = Field(
        None, description="Only this queue's finished tasks (every queue's when left out)."
    )
    include_failed: bool = Field(
        False, description="Also delete failed, cancelled and timed-out tasks."
    )


class ExportParams(_Params):
    what: Literal["jobs", "metrics", "config", "all"] = "all"
    limit: int = Field(1000, ge=1, le=10_000, description="At most this many jobs.")
    offset: int = Field(0, ge=0, le=_MAX_OFFSET)


def _setting(name: str) -> Any:
    """An optional field with the bounds ``Settings`` gives ``name``: one definition of each
    limit, whether it comes from the configuration or from ``queue_configure``."""
    bounds = {
        key: getattr(rule, key)
        for rule in Settings.model_fields[name].metadata
        for key in ("gt", "ge", "lt", "le")
        if hasattr(rule, key)
    }
    return Field(None, **bounds)


class ConfigureParams(_Params):
    """Run-time settings; give none to see the current ones."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    queue: QueueName | None = Field(
        None,
        description="A named queue whose own limits to change (max_concurrent, "
        "max_queue_size, default_timeout_s, max_retries); left out, the agent's settings.",
    )

    max_concurrent: int | None = _setting("max_concurrent")
    max_queue_size: int | None = _setting("max_queue_size")
    default_timeout_s: float | None = _setting("default_timeout_s")
    max_retries: int | None = _setting("max_retries")
    retry_base_s: float | None = _setting("retry_base_s")
    retry_factor: float | None = _setting("retry_factor")
    retry_cap_s: float | None = _setting("retry_cap_s")
    retry_jitter: float | None = _setting("retry_jitter")


_RUNTIME_KEYS = tuple(k for k in ConfigureParams.model_fields if k != "queue")
_QUEUE_LIMITS = frozenset(QueueSettings.model_fields)
# Settings only the agent has (the retry backoff): queue_configure with queue refuses them.
AGENT_ONLY_SETTINGS = tuple(k for k in _RUNTIME_KEYS if k not in _QUEUE_LIMITS)


def task_view(agent: Agent, task: DockerTask, *, include_logs: bool) -> dict[str, Any]:
    """The task's ``TaskView`` with its place in the queue, as JSON."""
    position = agent.queue.queue_position(task)
    return views.task_view(task, queue_position=position, include_logs=include_logs).as_json()


def _json_bytes(value: Any) -> int:
    """The size of ``value`` in the answer (ASCII JSON, as the doors send it)."""
    return len(json.dumps(value, default=str)) + 2  # and the separator


@dataclass
class _Page:
    """Task views cut at a task boundary to fit a byte budget."""

    views: list[dict[str, Any]]
    total: int
    next_offset: int
    truncated: bool

    def paging(self, command: str) -> dict[str, Any]:
        """The keys that tell a client how to get the rest; none if nothing was cut."""
        if not self.truncated:
            return {}
        return {
            "truncated": True,
            "next_offset": self.next_offset,
            "note": (
                f"Cut to fit max_answer_bytes: run {command} again with offset "
                f"{self.next_offset} for the rest."
            ),
        }


async def _bounded_page(
    agent: Agent, query: TaskQuery, *, include_logs: bool, budget: int
) -> _Page:
    """Up to ``query.limit`` task views from ``query.offset``, read from the store in chunks
    and cut once their JSON would pass ``budget`` bytes: a long export never sits whole in
    memory. The first task always fits, so paging moves on even past a huge one."""
    views: list[dict[str, Any]] = []
    seen: set[str] = set()  # a task inserted between two reads shifts the rest by one
    used, total, offset, chunk = 0, 0, query.offset, _FIRST_CHUNK
    while offset < query.offset + query.limit:
        want = min(chunk, query.offset + query.limit - offset)
        tasks, total = await agent.queue.list_tasks(replace(query, offset=offset, limit=want))
        for task in tasks:
            if task.id in seen:
                offset += 1
                continue
            view = task_view(agent, task, include_logs=include_logs)
            size = _json_bytes(view)
            if views and used + size > budget:
                return _Page(views, total, offset, truncated=True)
            views.append(view)
            seen.add(task.id)
            used += size
            offset += 1
        if len(tasks) < want:
            break
        chunk = min(_MOST_CHUNK, max(1, (budget - used) * len(views) // max(used, 1) + 1))
    return _Page(views, total, offset, truncated=False)


def _budget(agent: Agent, *parts: Any) -> int:
    """The bytes a listing may use next to ``parts`` under ``max_answer_bytes``."""
    used = _ENVELOPE_BYTES + sum(_json_bytes(p) for p in parts)
    return max(1, agent.settings.max_answer_bytes - used)


@REGISTRY.command(
    "queue_status",
    QueueStatusParams,
    result=QueueStatus,
    example={"include_logs": False, "detailed": True},
    read_only=True,
    idempotent=True,
)
async def queue_status(agent: Agent, p: QueueStatusParams) -> dict[str, Any]:
    """Queue statistics: summary (running, waiting), distributions by status, type and error
    code, performance (success rate, average duration), retries and recent activity. With
    detailed, also the running, waiting (in run order, with queue positions) and paused tasks;
    lists longer than max_answer_bytes are cut ("truncated": true; page them with
    queue_list_tasks). Use it to see how busy the agent is or to find a task's id."""
    data = await agent.queue.get_queue_stats()
    data["named_queue"] = agent.queue.queue_view(p.queue).model_dump(mode="json")
    if p.detailed:
        queue = agent.queue
        lists = {
            "running": queue.running_tasks(),
            "pending": queue.pending_tasks(),
            "paused": queue.paused_tasks(),
        }
        lists = {name: [t for t in tasks if t.queue == p.queue] for name, tasks in lists.items()}
        data["tasks"], cut = _live_views(agent, lists, p, _budget(agent, data))
        if cut:
            data["truncated"] = True
            data["note"] = (
                "Task lists cut to fit max_answer_bytes: page through them with "
                "queue_list_tasks (status, offset)."
            )
    return data


def _live_views(
    agent: Agent, lists: dict[str, list[DockerTask]], p: QueueStatusParams, budget: int
) -> tuple[dict[str, list[dict[str, Any]]], bool]:
    """Each list's views, up to ``p.limit``, until ``budget`` bytes are used; True if cut."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in lists}
    used, cut = 0, False
    for name, tasks in lists.items():
        for task in tasks[: p.limit]:
            view = task_view(agent, task, include_logs=p.include_logs)
            used += _json_bytes(view)
            if used > budget:
                cut = True
                break
            out[name].append(view)
    return out, cut


@REGISTRY.command(
    "queue_task_status",
    TaskStatusParams,
    result=TaskStatusResult,
    example={"task_id": _EXAMPLE_TASK_ID, "include_logs": True, "detailed": True},
    read_only=True,
    idempotent=True,
)
async def queue_task_status(agent: Agent, p: TaskStatusParams) -> dict[str, Any]:
    """One task: status with description, progress, current step, timing, queue position,
    retry state, result, and on failure the error code with a description and suggestions to
    fix it. Use it to follow a task after submitting it or to learn why it failed."""
    summary = await agent.queue.get_task_summary(p.task_id)
    if not p.include_logs:
        summary.pop("logs", None)
    if p.detailed:
        task = await agent.queue.require_task(p.task_id)
        summary["task"] = task.public_dict(include_logs=False)
    return summary


@REGISTRY.command(
    "queue_list_tasks",
    ListParams,
    result=TaskList,
    example={"status": ["failed"], "limit": 20},
    read_only=True,
    idempotent=True,
)
async def queue_list_tasks(agent: Agent, p: ListParams) -> dict[str, Any]:
    """Tasks newest first, filtered by status and type, paged with limit and offset, with the
    total that match. An answer longer than max_answer_bytes is cut at a task and says
    "truncated": true with the next_offset to ask for. Use it to find failed tasks or browse
    the history."""
    query = TaskQuery(
        status=p.status, task_type=p.task_type, queue=p.queue, limit=p.limit, offset=p.offset
    )
    page = await _bounded_page(agent, query, include_logs=p.include_logs, budget=_budget(agent))
    return {
        "tasks": page.views,
        "total": page.total,
        "limit": p.limit,
        "offset": p.offset,
        **page.paging("queue_list_tasks"),
    }


@REGISTRY.command(
    "queue_manage",
    ManageParams,
    result=Managed,
    example={"action": "pause", "task_id": _EXAMPLE_TASK_ID},
    destructive=True,
)
async def queue_manage(agent: Agent, p: ManageParams) -> dict[str, Any]:
    """Control one task: pause (a waiting task is held; a running one is stopped and runs
    again on resume), resume, retry (a failed, cancelled or timed-out task; force goes past
    max_retries) or cancel (a running task is really stopped). Refused transitions answer with
    a specific code, e.g. QUEUE_TASK_ALREADY_RUNNING."""
    queue = agent.queue
    action = Action(p.action)
    if action is Action.PAUSE:
        task = await queue.pause_task(p.task_id)
    elif action is Action.RESUME:
        task = await queue.resume_task(p.task_id)
    elif action is Action.RETRY:
        task = await queue.retry_task(p.task_id, force=p.force)
    else:
        task = await queue.cancel_task(p.task_id)
    return {
        "task_id": task.id,
        "action": p.action,
        "task": task_view(agent, task, include_logs=False),
    }


@REGISTRY.command(
    "queue_pause", QueueParams, result=QueuePaused, example={"queue": "default"}, idempotent=True
)
async def queue_pause(agent: Agent, p: QueueParams) -> dict[str, Any]:
    """Pause a queue (default unless named): its running tasks finish, nothing new of it
    starts until queue_resume; other queues run on. The pause is kept across restarts; the
    answer comes once it is stored."""
    await agent.queue.pause_queue(p.queue)
    return {"queue": p.queue, "paused": True}


@REGISTRY.command(
    "queue_resume", QueueParams, result=QueuePaused, example={"queue": "default"}, idempotent=True
)
async def queue_resume(agent: Agent, p: QueueParams) -> dict[str, Any]:
    """Resume a queue (default unless named) after queue_pause: its waiting tasks start
    again."""
    await agent.queue.resume_queue(p.queue)
    return {"queue": p.queue, "paused": False}


@REGISTRY.command(
    "queue_clear",
    ClearParams,
    result=Cleared,
    example={"include_failed": False},
    destructive=True,
)
async def queue_clear(agent: Agent, p: ClearParams) -> dict[str, Any]:
    """Delete finished tasks from the history: completed and merged ones, and with
    include_failed also failed, cancelled and timed-out ones. Returns how many were deleted.
    Waiting and running tasks are never touched."""
    return {"deleted": await agent.queue.clear(include_failed=p.include_failed, queue=p.queue)}


class MetricsParams(_Params):
    historical: bool = Field(
        False,
        description="Also the trends per hour and per day (submitted, completed, failed, mean "
        "wait and run time), from the counters the agent keeps every stats_snapshot_interval_s.",
    )
    days: float = Field(7.0, gt=0, le=366, description="historical: how many days back.")


@REGISTRY.command(
    "queue_metrics",
    MetricsParams,
    result=QueueMetrics,
    example={"historical": True, "days": 7},
    read_only=True,
    idempotent=True,
)
async def queue_metrics(agent: Agent, p: MetricsParams) -> dict[str, Any]:
    """Production counters since the store was created: enqueued, dequeued, completed, failed,
    timed out, cancelled, retried, merged, average wait and processing time; plus how many
    tasks run and wait now. With historical: true, also the trends per hour and per day over
    the last days (history: hourly and daily, oldest first)."""
    stats = await agent.queue.get_queue_stats()
    data = {**stats["counters"], **stats["summary"], "paused": stats["queue"]["paused"]}
    if p.historical:
        data["history"] = (await agent.queue.trends(p.days)).as_json()
    return data


@REGISTRY.command(
    "queue_export",
    ExportParams,
    result=Export,
    example={"what": "all", "limit": 100},
    read_only=True,
    idempotent=True,
)
async def queue_export(agent: Agent, p: ExportParams) -> dict[str, Any]:
    """Export jobs (newest first, paged with limit and offset), metrics, configuration, or all
    of them, as JSON. Jobs longer than max_answer_bytes are cut at a job: the answer then says
    "truncated": true and the next_offset to export from. Credentials are never included."""
    data: dict[str, Any] = {}
    if p.what in ("metrics", "all"):
        data["metrics"] = await agent.queue.get_queue_stats()
    if p.what in ("config", "all"):
        data["config"] = agent.public_settings()
    if p.what in ("jobs", "all"):
        query = TaskQuery(limit=p.limit, offset=p.offset)
        page = await _bounded_page(agent, query, include_logs=True, budget=_budget(agent, data))
        data.update(jobs=page.views, total_jobs=page.total, **page.paging("queue_export"))
    return data


@REGISTRY.command(
    "queue_configure",
    ConfigureParams,
    result=Configured,
    example={"max_concurrent": 2},
    idempotent=True,
)
async def queue_configure(agent: Agent, p: ConfigureParams) -> dict[str, Any]:
    """Show the queue's run-time settings, or change some of them: max_concurrent,
    max_queue_size, default_timeout_s, max_retries and the retry backoff (retry_base_s,
    retry_factor, retry_cap_s, retry_jitter). Changes apply at once and last until restart.
    retry_cap_s may not fall below retry_base_s, counting the current value of the one not
    given (a rule across the call and the agent's state, so no schema can state it)."""
    changes = p.model_dump(exclude_none=True, exclude={"queue"})
    if p.queue is not None:
        return await _configure_queue(agent, p.queue, changes)
    if changes:
        agent.reconfigure(changes)
    current = agent.public_settings()
    return {"changed": sorted(changes), "settings": {k: current[k] for k in _RUNTIME_KEYS}}


async def _configure_queue(agent: Agent, name: str, changes: dict[str, Any]) -> dict[str, Any]:
    agent_wide = [k for k in AGENT_ONLY_SETTINGS if k in changes]
    if agent_wide:
        raise InvalidParams(
            f"{', '.join(agent_wide)}: the retry backoff is the agent's, not a queue's; "
            "change it without queue.",
            details={"fields": agent_wide, "queue": name},
        )
    view = await agent.queue.configure_queue(name, QueueSettings(**changes))
    current = agent.public_settings()
    return {
        "changed": sorted(changes),
        "settings": {k: current[k] for k in _RUNTIME_KEYS} | view.limits.model_dump(),
        "queue": view.model_dump(mode="json"),
    }


@REGISTRY.command("commands", NoParams, result=CommandList, read_only=True, idempotent=True)
async def commands(agent: Agent, p: NoParams) -> dict[str, Any]:
    """Every command the agent understands, with its description, JSON schema of params and
    an example message."""
    return {"commands": [c.describe() for c in REGISTRY]}
