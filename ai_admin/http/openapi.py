"""The OpenAPI document of the HTTP API, generated from the command registry's models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from ai_admin import __version__
from ai_admin.commands import REGISTRY, Command
from ai_admin.mcp import MCP_METHODS, MCP_PATH

_REF = "#/components/schemas/{model}"
_ENVELOPE = {
    "type": "object",
    "required": ["success", "action"],
    "properties": {
        "success": {"type": "boolean"},
        "action": {"type": ["string", "null"]},
        "data": {"type": "object"},
        "error": {
            "type": "object",
            "required": ["code", "message", "details", "suggestions"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
                "suggestions": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}
_ERRORS = {
    str(s): {"$ref": "#/components/responses/Error"}
    for s in (400, 401, 403, 404, 409, 413, 429, 500, 503)
}
# Every route, /health included, refuses a foreign Host or browser Origin (ai_admin.http.guard).
_GUARDED = {
    "400": {"$ref": "#/components/responses/HostNotAllowed"},
    "403": {"$ref": "#/components/responses/OriginNotAllowed"},
}
_LIMITED = {"429": {"$ref": "#/components/responses/LimitReached"}}
_ENVELOPE_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
_RESPONSES = {
    "Error": (
        "An error envelope with a code and suggestions. On every route a 400 may be "
        "REQUEST_HOST_NOT_ALLOWED (the Host header names a host the agent does not serve) and "
        "a 403 REQUEST_ORIGIN_NOT_ALLOWED (a browser Origin not in allowed_origins)."
    ),
    "HostNotAllowed": (
        "REQUEST_HOST_NOT_ALLOWED: the Host header names a host the agent does not serve "
        "(see allowed_hosts)."
    ),
    "OriginNotAllowed": (
        "REQUEST_ORIGIN_NOT_ALLOWED: the request carries a browser Origin not in allowed_origins."
    ),
    "LimitReached": (
        "REQUEST_LIMIT_REACHED: the token already holds max_event_streams_per_token event "
        "streams or max_mcp_sessions_per_token MCP sessions; retry once one has ended."
    ),
}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _answer(description: str = "The command's envelope") -> dict[str, Any]:
    return {
        "200": {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}},
        },
        **_ERRORS,
    }


def _op(summary: str, **extra: Any) -> dict[str, Any]:
    return {"summary": summary[:120], "description": summary, "responses": _answer(), **extra}


def _query(model_name: str, schemas: dict[str, Any], exclude: set[str]) -> list[dict[str, Any]]:
    props = schemas[model_name].get("properties", {})
    return [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in props.items()
        if name not in exclude
    ]


@cache
def document() -> dict[str, Any]:
    commands = list(REGISTRY)
    refs, top = models_json_schema([(c.params, "validation") for c in commands], ref_template=_REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    schemas["Envelope"] = _ENVELOPE
    name_of = {c.name: refs[(c.params, "validation")]["$ref"].rsplit("/", 1)[-1] for c in commands}
    messages = [
        {
            "type": "object",
            "title": c.name,
            "description": c.description,
            # params may be left out (or null) only when the command needs none of them
            "required": ["action", "params"] if _needs_params(c) else ["action"],
            "additionalProperties": False,
            "properties": {
                "action": {"const": c.name},
                "params": (
                    {"$ref": _REF.format(model=name_of[c.name])}
                    if _needs_params(c)
                    else {"anyOf": [{"$ref": _REF.format(model=name_of[c.name])}, {"type": "null"}]}
                ),
            },
        }
        for c in commands
    ]
    task_id = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
    submit = {
        "oneOf": [
            {
                "type": "object",
                "required": ["task_type", "params"],
                "properties": {
                    "task_type": {"const": name},
                    "params": {"$ref": _REF.format(model=name_of[name])},
                },
            }
            for name in ("docker_build", "docker_push", "docker_pull")
        ]
    }
    paths: dict[str, Any] = {
        "/cmd": {
            "post": _op("Run any command message.", requestBody=_json_body({"oneOf": messages}))
        },
        "/api/tasks": {
            "get": _op(
                _description("queue_list_tasks"),
                parameters=_query(name_of["queue_list_tasks"], schemas, set()),
            ),
            "post": _op("Submit a Docker task.", requestBody=_json_body(submit)),
        },
        "/api/tasks/{task_id}": {
            "get": _op(
                _description("queue_task_status"),
                parameters=[task_id, *_query(name_of["queue_task_status"], schemas, {"task_id"})],
            )
        },
        "/api/stats": {
            "get": _op(
                _description("queue_status"),
                parameters=_query(name_of["queue_status"], schemas, set()),
            )
        },
        "/api/commands": {"get": _op(_description("commands"))},
        "/api/events": {
            "get": {
                "summary": "Task changes as server-sent events (all tasks, or one with task_id).",
                "parameters": [
                    {
                        "name": "task_id",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {"description": "An event stream", "content": {"text/event-stream": {}}},
                    **_ERRORS,
                    **_LIMITED,
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics.",
                "responses": {
                    "200": {"description": "Prometheus text", "content": {"text/plain": {}}},
                    "401": _ERRORS["401"],
                    **_GUARDED,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "responses": {
                    "200": {
                        "description": "The OpenAPI document",
                        "content": {"application/json": {}},
                    },
                    "401": _ERRORS["401"],
                    **_GUARDED,
                },
            }
        },
        MCP_PATH: {
            method.lower(): {
                "summary": "MCP over streamable HTTP: every command as a tool.",
                "responses": {"200": {"description": "MCP transport"}, **_ERRORS, **_LIMITED},
            }
            for method in MCP_METHODS
        },
        "/health": {
            "get": {
                "summary": "Agent and Docker engine health (no token needed).",
                "security": [],
                "responses": {
                    "200": {"description": "Health", "content": {"application/json": {}}},
                    **_GUARDED,
                },
            }
        },
    }
    for action in ("pause", "resume", "retry", "cancel"):
        paths[f"/api/tasks/{{task_id}}/{action}"] = {
            "post": _op(
                f"{action.capitalize()} a task (see queue_manage).",
                parameters=[
                    task_id,
                    {
                        "name": "force",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "boolean"},
                    },
                ],
            )
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ai-admin", "version": __version__},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                name: {"description": description, "content": _ENVELOPE_REF}
                for name, description in _RESPONSES.items()
            },
        },
    }


def _needs_params(command: Command[Any]) -> bool:
    return any(f.is_required() for f in command.params.model_fields.values())


def _description(name: str) -> str:
    command = REGISTRY.get(name)
    assert command is not None, name
    return command.description
