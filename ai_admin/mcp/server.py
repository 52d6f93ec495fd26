"""The MCP server: the registry's commands as tools, task logs as resources, one prompt.

Built on the SDK's low-level ``Server`` so that every tool comes from the registry (the
high-level server wants one Python function per tool). The same server runs over stdio
(``ai-admin mcp``) and inside the agent's HTTP app (``mount_mcp``); who may write is decided
per request: the local user of a stdio server may, an HTTP caller only with an operator token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from ai_admin import __version__
from ai_admin.agent import Agent
from ai_admin.commands.registry import REGISTRY, Registry
from ai_admin.mcp.calls import ToolCalls
from ai_admin.mcp.prompts import DIAGNOSE, diagnose
from ai_admin.mcp.resources import LOG_TEMPLATE, list_logs, read_log
from ai_admin.mcp.tools import list_tools

__all__ = ["ACCESS_SCOPE_KEY", "build_server"]

ACCESS_SCOPE_KEY = "ai_admin.access"
"""Set by the HTTP door in each request's ASGI scope: "write" or "read"."""

SERVER_NAME = "ai-admin"
INSTRUCTIONS = (
    "ai-admin runs Docker builds, pushes and pulls as queued tasks. Queue one with "
    "docker_build, docker_push or docker_pull; pass wait: true to wait for it with progress "
    "and get the finished task, or follow it later with queue_task_status. A failure comes "
    "back as an error with a code and suggestions. Each task's log is the resource "
    "ai-admin://tasks/{task_id}/log; the prompt diagnose_task explains a failed task."
)

Context = ServerRequestContext[dict[str, Any]]


def can_write(ctx: Context) -> bool:
    """An HTTP request may write only with an operator token; stdio and in-process may."""
    request = ctx.request
    if request is None:
        return True
    scope = getattr(request, "scope", None)
    return isinstance(scope, Mapping) and scope.get(ACCESS_SCOPE_KEY) == "write"


def build_server(agent: Agent, registry: Registry = REGISTRY) -> Server[dict[str, Any]]:
    calls = ToolCalls(agent, registry)
    tools = list_tools(registry)

    async def on_list_tools(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def on_call_tool(
        ctx: Context, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await calls.call(
            params.name,
            params.arguments,
            can_write=can_write(ctx),
            progress=ctx.session.report_progress,
        )

    async def on_list_resources(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=await list_logs(agent))

    async def on_list_resource_templates(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[LOG_TEMPLATE])

    async def on_read_resource(
        ctx: Context, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await read_log(agent, params.uri)

    async def on_list_prompts(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[DIAGNOSE])

    async def on_get_prompt(
        ctx: Context, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        if params.name != DIAGNOSE.name:
            raise MCPError(
                types.INVALID_PARAMS,
                f"Unknown prompt {params.name[:100]!r}; the prompt is {DIAGNOSE.name}.",
            )
        return await diagnose(agent, params.arguments)

    return Server(
        SERVER_NAME,
        version=__version__,
        title="ai-admin Docker task agent",
        instructions=INSTRUCTIONS,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=on_list_resources,
        on_list_resource_templates=on_list_resource_templates,
        on_read_resource=on_read_resource,
        on_list_prompts=on_list_prompts,
        on_get_prompt=on_get_prompt,
    )
