"""Tool definitions come from the registry: one per command, schema and flags unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from ai_admin.cli.mcp_commands import register
from ai_admin.commands import REGISTRY, Command
from ai_admin.mcp.tools import (
    ROOT_REFUSED,
    WAIT_KEYS,
    WAIT_LIMIT_S,
    ToolFormat,
    export_tools,
    input_schema,
    list_tools,
    submits_task,
)

SUBMITTING = {"docker_build", "docker_push", "docker_pull"}


def _without_wait(schema: dict[str, Any]) -> dict[str, Any]:
    properties = {k: v for k, v in schema["properties"].items() if k not in WAIT_KEYS}
    return {**schema, "properties": properties}


def test_one_tool_per_command_with_the_commands_schema_and_description() -> None:
    tools = {tool.name: tool for tool in list_tools()}
    assert list(tools) == REGISTRY.names()
    for command in REGISTRY:
        tool = tools[command.name]
        assert tool.input_schema["type"] == "object"
        assert _without_wait(tool.input_schema) == command.schema()
        assert tool.description is not None
        assert tool.description.startswith(command.description)


def test_annotations_are_the_commands_flags() -> None:
    for tool in list_tools():
        command = REGISTRY.get(tool.name)
        assert command is not None
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is command.read_only
        assert tool.annotations.destructive_hint is command.destructive
        assert tool.annotations.idempotent_hint is command.idempotent
        assert tool.annotations.open_world_hint is tool.name.startswith("docker_")


def _exported_schema(fmt: ToolFormat, tool: dict[str, Any]) -> dict[str, Any]:
    if fmt is ToolFormat.MCP:
        return dict(tool["inputSchema"])
    if fmt is ToolFormat.OPENAI:
        return dict(tool["function"]["parameters"])
    return dict(tool["input_schema"])


@pytest.mark.parametrize("fmt", list(ToolFormat))
def test_every_exported_input_schema_is_a_plain_object_at_its_root(fmt: ToolFormat) -> None:
    """The Anthropic API refuses a whole tool list if one input schema has anyOf, oneOf or
    allOf at its root; other assistants refuse not and enum there."""
    exported = export_tools(fmt)
    assert len(exported) == len(REGISTRY.names())
    for tool in exported:
        schema = _exported_schema(fmt, tool)
        assert schema["type"] == "object", tool
        assert isinstance(schema["properties"], dict), tool
        assert not ROOT_REFUSED & schema.keys(), tool


def test_a_command_with_a_combinator_at_its_schemas_root_is_refused() -> None:
    class EitherOr(BaseModel):
        model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["a"]}]})
        a: str | None = None

    async def handler(agent: Any, p: EitherOr) -> dict[str, Any]:
        return {}

    with pytest.raises(ValueError, match="anyOf"):
        input_schema(Command("either_or", "d", EitherOr, handler))


def test_a_push_and_a_build_that_may_push_are_destructive() -> None:
    hints = {t.name: t.annotations.destructive_hint for t in list_tools() if t.annotations}
    assert hints["docker_push"] is True
    assert hints["docker_build"] is True  # push: true replaces the registry's tags
    assert hints["docker_pull"] is False


def test_wait_options_only_on_the_task_submitting_tools() -> None:
    assert {c.name for c in REGISTRY if submits_task(c)} == SUBMITTING
    for tool in list_tools():
        properties = tool.input_schema["properties"]
        if tool.name in SUBMITTING:
            assert properties["wait"]["type"] == "boolean"
            assert properties["wait_timeout_s"]["maximum"] == WAIT_LIMIT_S
            assert "wait: true" in (tool.description or "")
        else:
            assert not WAIT_KEYS & properties.keys()


def test_a_wait_option_clashing_with_a_param_is_refused() -> None:
    command = REGISTRY.get("docker_pull")
    assert command is not None
    clash = type("Clash", (command.params,), {"__annotations__": {"wait": int}, "wait": 0})
    fake = Command("clash", "d", clash, command.handler)
    with pytest.raises(ValueError, match="wait"):
        input_schema(fake)


def test_export_mcp_is_what_tools_list_answers() -> None:
    exported = export_tools(ToolFormat.MCP)
    assert exported == [
        t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in list_tools()
    ]
    assert {"name", "description", "inputSchema", "annotations"} <= exported[0].keys()


@pytest.mark.parametrize("fmt", [ToolFormat.OPENAI, ToolFormat.ANTHROPIC])
def test_function_schema_exports_describe_cmd_messages_without_wait(fmt: ToolFormat) -> None:
    exported = export_tools(fmt)
    assert len(exported) == len(REGISTRY.names())
    for entry, command in zip(exported, REGISTRY, strict=True):
        if fmt is ToolFormat.OPENAI:
            assert entry["type"] == "function"
            entry = entry["function"]
            schema = entry["parameters"]
        else:
            schema = entry["input_schema"]
        assert entry["name"] == command.name
        assert entry["description"] == command.description
        assert schema == command.schema()


@pytest.mark.parametrize("fmt", ["mcp", "openai", "anthropic"])
def test_cli_tools_prints_the_definitions(fmt: str) -> None:
    app = typer.Typer()
    register(app)
    register(app)  # a second call adds nothing
    assert sorted(c.name or "" for c in app.registered_commands) == ["mcp", "tools"]
    result = CliRunner().invoke(app, ["tools", "--format", fmt])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == export_tools(ToolFormat(fmt))


def test_cli_tools_refuses_an_unknown_format() -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["tools", "--format", "yaml"])
    assert result.exit_code == 2
