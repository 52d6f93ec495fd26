"""Real answers against the schemas the agent publishes: the OpenAPI document for HTTP, each
tool's ``outputSchema`` for MCP, ``TaskEvent``'s schema for server-sent events.

The schemas are derived from ``ai_admin.wire``'s models (which forbid keys they do not
name), so an answer that gains, loses or retypes a key, or a model that drifts from what the
handlers send, fails here. ``Validated`` records which commands had an answer checked, so a
test can require every command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jsonschema
import mcp.types as types
from http_client import Answer

from ai_admin.commands import REGISTRY
from ai_admin.http import openapi
from ai_admin.wire.events import event_schema

_COMPONENTS = openapi.document()["components"]


@cache
def _validator(schema_ref: str) -> jsonschema.Draft202012Validator:
    """A validator of one schema of the OpenAPI document, its references resolved there."""
    schema = {"$ref": schema_ref, "components": _COMPONENTS}
    return jsonschema.Draft202012Validator(schema)


def _operation(method: str, path: str) -> dict[str, Any] | None:
    """The documented operation ``method path`` falls under; None for no route of the API."""
    path = path.split("?", 1)[0]
    for template, item in openapi.document()["paths"].items():
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method.lower() in item:
            operation: dict[str, Any] = item[method.lower()]
            return operation
    return None


def _response_schema(operation: dict[str, Any] | None, status: int) -> dict[str, Any]:
    if operation is None:  # a refusal of a route the API does not have
        assert status >= 400, status
        return {"$ref": "#/components/schemas/Failure"}
    response = operation["responses"][str(status)]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = _COMPONENTS["responses"][name]
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


@dataclass
class Validated:
    """Which commands' answers were checked, successes and failures apart."""

    successes: set[str] = field(default_factory=set)
    failures: set[str] = field(default_factory=set)

    def check_http(self, answer: Answer) -> None:
        """An envelope from the agent's HTTP API, against its operation's documented answer
        for that status (for ``/cmd``, the success envelope of the command it names)."""
        if answer.content_type != "application/json" or not isinstance(answer.body, dict):
            return
        operation = _operation(answer.method, answer.path)
        if "success" not in answer.body:
            return  # /health: not an envelope
        schema = _response_schema(operation, answer.status)
        action = answer.body.get("action")
        if answer.body["success"] and answer.path.split("?")[0] == "/cmd":
            name = openapi.success_schema_name(action)
            schema = {"$ref": f"#/components/schemas/{name}"}
        errors = list(_validator_for(schema).iter_errors(answer.body))
        assert not errors, f"{answer.describe()}\n{errors[0]}"
        if isinstance(action, str) and REGISTRY.get(action) is not None:
            (self.successes if answer.body["success"] else self.failures).add(action)

    def check_tool(self, tool: types.Tool, result: types.CallToolResult) -> None:
        """A tool's structured content against the tool's own ``outputSchema``."""
        assert tool.output_schema is not None, tool.name
        content = result.structured_content
        assert isinstance(content, dict), (tool.name, result)
        errors = list(jsonschema.Draft202012Validator(tool.output_schema).iter_errors(content))
        assert not errors, f"{tool.name}: {content}\n{errors[0]}"
        (self.successes if content["success"] else self.failures).add(tool.name)


def _validator_for(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    if set(schema) == {"$ref"}:
        return _validator(schema["$ref"])
    return jsonschema.Draft202012Validator({**schema, "components": _COMPONENTS})


def check_frame(frame: dict[str, str]) -> None:
    """One server-sent event (its ``event`` name and ``data`` text) against the stream's
    schema in the OpenAPI document."""
    operation = _operation("GET", "/api/events")
    assert operation is not None
    schema = operation["responses"]["200"]["content"]["text/event-stream"]["schema"]
    errors = list(_validator_for(schema).iter_errors(frame))
    assert not errors, f"{frame}\n{errors[0]}"


def check_event(data: dict[str, Any]) -> None:
    """One server-sent event's data, against ``TaskEvent``'s schema."""
    errors = list(jsonschema.Draft202012Validator(event_schema()).iter_errors(data))
    assert not errors, f"{data}\n{errors[0]}"
