"""Task logs as MCP resources: ``ai-admin://tasks/{task_id}/log``, plain text, one line each.

The template covers every task; the listing names the newest ones so an assistant can browse
without knowing an id.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import mcp.types as types
from mcp.shared.exceptions import MCPError

from ai_admin.agent import Agent
from ai_admin.errors import AiAdminError, ErrorCode
from ai_admin.mcp.results import log_uri
from ai_admin.queue.store import TaskQuery

__all__ = ["LOG_TEMPLATE", "list_logs", "read_log"]

LISTED_TASKS = 20
_LOG_URI = re.compile(r"^ai-admin://tasks/(?P<task_id>[^/?#]+)/log$")
_TEXT = "text/plain"

LOG_TEMPLATE = types.ResourceTemplate(
    name="task_log",
    title="Task log",
    uri_template=log_uri("{task_id}"),
    description="The log of one task (build steps, push and pull progress, Docker's error "
    "messages), oldest line first; the agent keeps the last lines of each task.",
    mime_type=_TEXT,
)


async def list_logs(agent: Agent) -> list[types.Resource]:
    tasks, _total = await agent.queue.list_tasks(TaskQuery(limit=LISTED_TASKS))
    return [
        types.Resource(
            uri=log_uri(task.id),
            name=f"task_log_{task.id}",
            title=f"Log of {task.task_type.value} task {task.id[:8]} ({task.status.value})",
            mime_type=_TEXT,
        )
        for task in tasks
    ]


async def read_log(agent: Agent, uri: str) -> types.ReadResourceResult:
    """The task's log lines; an unknown URI or task is a protocol error naming the cause."""
    match = _LOG_URI.match(uri)
    if match is None:
        raise MCPError(
            types.INVALID_PARAMS,
            f"Unknown resource {uri[:200]!r}; task logs are {log_uri('<task_id>')}.",
            {"code": ErrorCode.REQUEST_NOT_FOUND.value, "uri": uri[:200]},
        )
    try:
        task = await agent.queue.require_task(unquote(match["task_id"]))
    except AiAdminError as exc:
        raise MCPError(types.INVALID_PARAMS, exc.message, {**exc.to_dict(), "uri": uri}) from None
    text = "\n".join(task.logs)
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=uri, mime_type=_TEXT, text=text)]
    )
