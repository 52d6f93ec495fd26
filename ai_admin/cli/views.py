"""How the agent's answers look in a table: tasks, one task's status, the queue."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ai_admin.cli.output import Column, Fields, Records
from ai_admin.cli.units import duration, progress_numbers, when

__all__ = ["image_of", "short_type", "status_fields", "task_records"]


def short_type(task_type: Any) -> str:
    return str(task_type or "").removeprefix("docker_")


def image_of(task: Mapping[str, Any]) -> str:
    """The image a task works on: a pull's or push's reference, a build's first tag."""
    params = task.get("params") or {}
    if params.get("image_name"):
        tag = params.get("tag")
        return f"{params['image_name']}:{tag}" if tag else str(params["image_name"])
    tags = params.get("tags") or []
    return str(tags[0]) if tags else ""


def _status(task: Mapping[str, Any]) -> str:
    status = task.get("status")
    return str(status.get("value") if isinstance(status, Mapping) else status)


def _percent(value: Any) -> str:
    return "" if value is None else f"{float(value):.0f}%"


def _short_time(at: Any) -> str:
    return time.strftime("%m-%d %H:%M:%S", time.localtime(at)) if at else ""


# A table shows what fits 100 columns; CSV has every column.
TASK_COLUMNS = (
    Column("id", lambda t: t.get("id") or t.get("task_id"), no_wrap=True),
    Column("type", lambda t: short_type(t.get("task_type")), no_wrap=True),
    Column("status", _status, no_wrap=True),
    Column("progress", lambda t: t.get("progress"), _percent, "right", no_wrap=True),
    Column("step", lambda t: t.get("current_step"), in_table=False),
    Column("image", image_of),
    Column("priority", lambda t: t.get("priority"), in_table=False),
    Column("queue", lambda t: t.get("queue"), in_table=False),
    Column("created", lambda t: t.get("created_at"), _short_time, no_wrap=True),
    Column("error", lambda t: t.get("error_code")),
)


def task_records(data: Mapping[str, Any], title: str = "tasks") -> Records:
    """A ``queue_list_tasks`` answer: a row per task, and where the page sits."""
    tasks = data.get("tasks") or []
    offset, total = int(data.get("offset") or 0), data.get("total")
    footer = ""
    if total is not None:
        shown = f"{offset + 1}-{offset + len(tasks)}" if tasks else "none"
        footer = f"{shown} of {total}"
        next_offset = data.get("next_offset") or offset + len(tasks)
        if next_offset < total:
            footer += f"; next page: --offset {next_offset}"
    return Records(tasks, TASK_COLUMNS, footer, title)


def status_fields(summary: Mapping[str, Any]) -> Fields:
    """One task's ``queue_task_status`` answer, as the operator reads it."""
    status = summary.get("status") or {}
    timing = summary.get("timing") or {}
    error = summary.get("error") or {}
    retry = summary.get("retry") or {}
    values: dict[str, Any] = {
        "task_id": summary.get("task_id"),
        "type": short_type(summary.get("task_type")),
        "status": f"{status.get('value')} ({status.get('description')})",
        "progress": _percent(summary.get("progress")),
        "step": summary.get("current_step"),
        "numbers": progress_numbers(summary.get("progress_detail")),
        "priority": summary.get("priority"),
        "queue_position": summary.get("queue_position"),
        "created": when(timing.get("created_at")),
        "started": when(timing.get("started_at")),
        "completed": when(timing.get("completed_at")),
        "duration": duration(timing.get("duration")),
        "retries": f"{retry.get('retry_count', 0)} of {retry.get('max_retries')}",
    }
    if summary.get("merged_into"):
        values["merged_into"] = summary["merged_into"]
    if error:
        values["error"] = f"{error.get('code')}: {error.get('message')}"
        values["error.description"] = error.get("description")
        for n, suggestion in enumerate(error.get("suggestions") or [], 1):
            values[f"error.suggestion.{n}"] = suggestion
    if summary.get("result"):
        values["result"] = summary["result"]
    for n, line in enumerate(summary.get("logs") or [], 1):
        values[f"log.{n}"] = line
    return Fields({k: v for k, v in values.items() if v not in (None, "")})
