"""Tool definitions, derived from the command registry: nothing here names a command.

Each command becomes one tool with the command's name, its description (written for models:
when to use it, what it returns), its params model's JSON schema, the JSON schema of its
envelope (from its result model, ``ai_admin.wire``) as output schema, and annotations from its
flags. Commands that queue Docker work (their params include the queue options) also take
``wait`` and ``wait_timeout_s`` as MCP tools; those two exist only at this door, so the
function-schema exports for other assistants (``openai``, ``anthropic``) leave them out.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import mcp.types as types
from pydantic import BaseModel, ConfigDict, Field

from ai_admin.commands.docker_commands import QueueOptions
from ai_admin.commands.registry import REGISTRY, Command, Registry
from ai_admin.wire.envelope import Failure, Success, envelope_schema, success_of
from ai_admin.wire.results import TaskFailed, WaitedTask

__all__ = [
    "ROOT_REFUSED",
    "WAIT_KEYS",
    "WAIT_LIMIT_S",
    "ToolFormat",
    "WaitOptions",
    "export_tools",
    "input_schema",
    "list_tools",
    "mcp_tool",
    "output_schema",
    "submits_task",
]

WAIT_LIMIT_S = 3600.0
# Keywords no input schema may have at its root (assistants' tool APIs refuse them there).
ROOT_REFUSED = frozenset({"anyOf", "oneOf", "allOf", "not", "enum"})
_OPEN_WORLD_PREFIX = "docker_"


class WaitOptions(BaseModel):
    """What a task-submitting tool takes on top of its command's params."""

    model_config = ConfigDict(extra="forbid")

    wait: bool = Field(
        False,
        description="Wait for the task to finish, with progress notifications, and return the "
        "finished task instead of only its id.",
    )
    wait_timeout_s: float = Field(
        600.0,
        gt=0,
        le=WAIT_LIMIT_S,
        description="With wait: stop waiting after this many seconds and return the task as it "
        "stands (the task itself keeps running).",
    )


WAIT_KEYS = frozenset(WaitOptions.model_fields)

_WAIT_NOTE = (
    " With wait: true it instead waits (at most wait_timeout_s) for the task to finish, "
    "reporting its step and percentage as progress, and returns the finished task's summary; "
    "a task that fails then comes back as an error with its code and suggestions."
)


class ToolFormat(StrEnum):
    MCP = "mcp"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


def submits_task(command: Command[Any]) -> bool:
    """Whether the command queues a task (and so its tool can wait for it)."""
    return issubclass(command.params, QueueOptions)


def input_schema(command: Command[Any], *, with_wait: bool = True) -> dict[str, Any]:
    """The params model's JSON schema, plus the wait options for a task-submitting tool.

    Its root is a plain object schema: assistants' tool APIs refuse a whole tool list in which
    one input schema has a combinator or an enum at its root (the Anthropic API among them),
    so such a command is refused here rather than breaking every tool at once."""
    schema = command.schema()
    refused = ROOT_REFUSED.intersection(schema)
    if schema.get("type") != "object" or refused:
        raise ValueError(
            f"{command.name}'s params schema must be an object with no {sorted(refused)} at its"
            " root: write such a rule in the description and check it in the params model"
        )
    if not (with_wait and submits_task(command)):
        return schema
    properties = dict(schema.get("properties", {}))
    clash = WAIT_KEYS.intersection(properties)
    if clash:
        raise ValueError(f"{command.name} already has params named {sorted(clash)}")
    properties.update(WaitOptions.model_json_schema()["properties"])
    return {**schema, "properties": properties}


def output_schema(command: Command[Any]) -> dict[str, Any]:
    """The JSON schema of the tool's structured content: the command's envelope, and for a
    task-submitting tool also what waiting answers (the task's summary, or its failure)."""
    if submits_task(command):
        return envelope_schema(success_of(command.result), Success[WaitedTask], Failure, TaskFailed)
    return envelope_schema(success_of(command.result), Failure)


def description(command: Command[Any], *, with_wait: bool = True) -> str:
    if with_wait and submits_task(command):
        return command.description + _WAIT_NOTE
    return command.description


def tool_annotations(command: Command[Any]) -> types.ToolAnnotations:
    return types.ToolAnnotations(
        title=command.name.replace("_", " ").capitalize(),
        read_only_hint=command.read_only,
        destructive_hint=command.destructive,
        idempotent_hint=command.idempotent,
        open_world_hint=command.name.startswith(_OPEN_WORLD_PREFIX),
    )


def mcp_tool(command: Command[Any]) -> types.Tool:
    return types.Tool(
        name=command.name,
        description=description(command),
        input_schema=input_schema(command),
        output_schema=output_schema(command),
        annotations=tool_annotations(command),
    )


def list_tools(registry: Registry = REGISTRY) -> list[types.Tool]:
    return [mcp_tool(command) for command in registry]


def export_tools(fmt: ToolFormat, registry: Registry = REGISTRY) -> list[dict[str, Any]]:
    """The tool definitions as JSON-able dicts, for assistants that take function schemas.

    ``mcp`` is exactly what ``tools/list`` answers. ``openai`` (Chat Completions ``tools``) and
    ``anthropic`` (Messages ``tools``) describe the commands as ``POST /cmd`` runs them:
    ``{"action": <name>, "params": <arguments>}``, without the MCP-only wait options.
    """
    if fmt is ToolFormat.MCP:
        return [
            tool.model_dump(mode="json", by_alias=True, exclude_none=True)
            for tool in list_tools(registry)
        ]
    defs = [
        (c.name, description(c, with_wait=False), input_schema(c, with_wait=False))
        for c in registry
    ]
    if fmt is ToolFormat.OPENAI:
        return [
            {"type": "function", "function": {"name": n, "description": d, "parameters": s}}
            for n, d, s in defs
        ]
    return [{"name": n, "description": d, "input_schema": s} for n, d, s in defs]
