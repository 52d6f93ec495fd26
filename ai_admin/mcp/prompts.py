"""The ``diagnose_task`` prompt: everything known about a task, framed for finding the cause.

It embeds the task's summary (status, step, parameters without credentials, retries), the
error code with its meaning and suggestions, and the last log lines, then asks the assistant
for the cause and one concrete next step among the tools it has.
"""

from __future__ import annotations

import json
from typing import Any

import mcp.types as types
from mcp.shared.exceptions import MCPError

from ai_admin.agent import Agent
from ai_admin.errors import AiAdminError
from ai_admin.mcp.results import log_uri

__all__ = ["DIAGNOSE", "diagnose"]

DIAGNOSE_LOG_LINES = 40

DIAGNOSE = types.Prompt(
    name="diagnose_task",
    title="Diagnose a task",
    description="Explain why an ai-admin task failed (or where it stands) and what to do next, "
    "from its error code, suggestions and last log lines.",
    arguments=[
        types.PromptArgument(
            name="task_id",
            description="The task's id, as returned by docker_build, docker_push or docker_pull.",
            required=True,
        )
    ],
)

_ASK = """\
Using the facts above:
1. Say in one or two sentences what most likely went wrong (or, if the task has not failed,
   where it stands), quoting the log line or error detail that shows it.
2. Give one concrete next step: corrected parameters for a new docker_build, docker_push or
   docker_pull call; queue_manage with action "retry" (add "force": true past max_retries) when
   the cause was transient or has been fixed outside the agent; or what the operator must change
   (credentials, registry, Docker engine).
Do not retry an authentication or validation failure unchanged: it will fail the same way."""


async def diagnose(agent: Agent, arguments: dict[str, str] | None) -> types.GetPromptResult:
    task_id = (arguments or {}).get("task_id", "").strip()
    if not task_id:
        raise MCPError(types.INVALID_PARAMS, "diagnose_task needs the argument task_id.")
    try:
        summary = await agent.queue.get_task_summary(task_id)
        task = await agent.queue.require_task(task_id)
    except AiAdminError as exc:
        raise MCPError(types.INVALID_PARAMS, exc.message, exc.to_dict()) from None
    facts = _facts(summary, task.params)
    return types.GetPromptResult(
        description=f"Diagnose {summary['task_type']} task {task_id}",
        messages=[
            types.PromptMessage(role="user", content=types.TextContent(text=f"{facts}\n\n{_ASK}"))
        ],
    )


def _facts(summary: dict[str, Any], params: dict[str, Any]) -> str:
    status = summary["status"]
    retry = summary["retry"]
    lines = [
        f"ai-admin task {summary['task_id']} ({summary['task_type']}) is {status['value']}: "
        f"{status['description']}.",
        f"Current step: {summary['current_step']} ({summary['progress']:.0f}%).",
        f"Parameters (credentials are never stored): {json.dumps(params, default=str)}",
        f"Retries: {retry['retry_count']} of {retry['max_retries']}; "
        f"can retry: {retry['can_retry']}.",
    ]
    error = summary.get("error")
    if error is not None:
        lines += [
            f"Error code: {error['code']}",
            f"Error message: {error['message']}",
            f"What the code means: {error['description']}",
        ]
        if error.get("details"):
            lines.append(f"Error details: {json.dumps(error['details'], default=str)}")
        lines += ["Suggestions from the agent:", *(f"- {s}" for s in error["suggestions"])]
    if summary.get("result"):
        lines.append(f"Result: {json.dumps(summary['result'], default=str)}")
    logs = summary.get("logs") or []
    tail = logs[-DIAGNOSE_LOG_LINES:]
    lines.append(
        f"Last {len(tail)} of {len(logs)} log lines (the whole log: {log_uri(summary['task_id'])}):"
    )
    lines += ["```", *tail, "```"] if tail else ["(the log is empty)"]
    return "\n".join(lines)
