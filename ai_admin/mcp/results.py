"""From command envelopes to MCP tool results.

A result carries the envelope as structured content, a short line a person (or a model) can
read at a glance and, for clients that pass only text on to the model, the envelope as JSON.
A failure is a tool error (``isError``) whose text starts with the code, then the message and
the suggestions, so a model can act on it without parsing anything.
"""

from __future__ import annotations

import json
from typing import Any

import mcp.types as types

from ai_admin.errors import ErrorCode
from ai_admin.queue.models import TaskStatus
from ai_admin.wire.envelope import failure, success

__all__ = [
    "LOG_TAIL_LINES",
    "log_uri",
    "submitted_headline",
    "task_result",
    "tool_result",
]

LOG_TAIL_LINES = 20


def log_uri(task_id: str) -> str:
    return f"ai-admin://tasks/{task_id}/log"


def tool_result(envelope: dict[str, Any], headline: str | None = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[
            types.TextContent(text=headline or _headline(envelope)),
            types.TextContent(text=json.dumps(envelope, default=str)),
        ],
        structured_content=envelope,
        is_error=not envelope.get("success"),
    )


def task_result(action: str, summary: dict[str, Any], *, finished: bool) -> types.CallToolResult:
    """The result of waiting for a task: a tool error if it failed or timed out.

    ``summary`` is ``get_task_summary``'s view; its log is cut to the last lines (the whole log
    is the task's log resource). A finished task that failed answers with its error code,
    message and suggestions, and with the summary under ``task``.
    """
    task = {**summary, "logs": summary.get("logs", [])[-LOG_TAIL_LINES:], "finished": finished}
    status = TaskStatus(summary["status"]["value"])
    progress = f"{status.value} ({summary['progress']:.0f}%), {summary['current_step']}"
    error = summary.get("error")
    if not finished:
        headline = f"{action} task {summary['task_id']} is still {progress} after the wait limit."
        return tool_result(success(action, task), headline)
    if error is None or status is TaskStatus.COMPLETED:
        headline = f"{action} task {summary['task_id']} finished: {progress}."
        return tool_result(success(action, task), headline)
    body = {
        "code": error["code"] or ErrorCode.UNKNOWN_ERROR.value,
        "message": error["message"] or status.description,
        "details": {
            **(error.get("details") or {}),
            "task_id": summary["task_id"],
            "status": status.value,
            "log_uri": log_uri(summary["task_id"]),
        },
        "suggestions": list(error.get("suggestions") or []),
    }
    envelope = {**failure(body, action), "task": task}
    headline = _headline(envelope) + (
        f"\nThe task's log is {log_uri(summary['task_id'])}; the prompt diagnose_task helps "
        "decide the next step."
    )
    return tool_result(envelope, headline)


def submitted_headline(action: str, data: dict[str, Any]) -> str:
    """What a model reads after queueing a task without waiting."""
    position = data.get("queue_position")
    where = f", queue position {position}" if position else ""
    merged = f", merged into {data['merged_into']}" if data.get("merged_into") else ""
    return (
        f"{action} queued task {data['task_id']} ({data['status']}{where}{merged}); "
        "follow it with queue_task_status (or pass wait: true to wait for it)."
    )


def _headline(envelope: dict[str, Any]) -> str:
    action = envelope.get("action") or "request"
    error = envelope.get("error")
    if error is None:
        return f"{action} succeeded."
    lines = [f"{action} failed: {error['code']}: {error['message']}"]
    lines += [f"- {s}" for s in error.get("suggestions") or []]
    return "\n".join(lines)
