"""The OpenAPI document of the HTTP API, built from the route table (``route_table.ROUTES``),
the command registry's params models and the wire layer's answer models: every operation has
an operationId, a tag, its parameters or body, and the schema of its success envelope.

The routes marked open in the table (``/health``, this document) say so with an empty
``security``. A submit (``POST /api/tasks``) answers 202 with a ``Location`` header; ``POST /cmd``
answers 200 and carries the same header when the command it ran submitted a task."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ai_admin import __version__
from ai_admin.commands import REGISTRY, Command
from ai_admin.http.route_table import ROUTES, Params, Route
from ai_admin.mcp import MCP_METHODS, MCP_PATH
from ai_admin.queue.events import Change, EventKind, Subject
from ai_admin.wire.envelope import Failure, success_of
from ai_admin.wire.events import event_schema, object_event_schema

_REF = "#/components/schemas/{model}"
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
# The answers of the routes that run no command, by operation id.
_OWN_RESPONSES: dict[str, dict[str, Any]] = {
    "getHealth": {
        "200": {"description": "Health", "content": {"application/json": {}}},
        **_GUARDED,
    },
    "streamEvents": {
        "200": {
            "description": (
                "An event stream: each event is named after its kind and its data is a "
                "TaskEvent as JSON, with its id in the frame's id: field (on the stream of all "
                "tasks, changes of other things too: an ObjectEvent named <subject>_<change>, "
                "such as schedule_fired with the task it submitted in data.task_id); the stream "
                "opens with "
                "retry: 2000. A client that reconnects with a Last-Event-ID header gets the "
                "events it missed (the agent keeps the last 10,000), then the live ones; if "
                "they are no longer kept (or the id is from before a restart: ids start at the "
                'agent\'s start time in microseconds), a reset event comes first, data {"event": '
                '"reset", "last_event_id": N}, then the current state as snapshot events. A '
                'stream cut off for falling behind ends with a lagged event, data {"event": '
                '"lagged"}.'
            ),
            "content": {"text/event-stream": {"schema": {"$ref": _REF.format(model="Event")}}},
        },
        **_ERRORS,
        **_LIMITED,
    },
    "getMetrics": {
        "200": {"description": "Prometheus text", "content": {"text/plain": {}}},
        "401": _ERRORS["401"],
        **_GUARDED,
    },
    "getOpenApi": {
        "200": {"description": "The OpenAPI document", "content": {"application/json": {}}},
        **_GUARDED,
    },
}
_LOCATION_TEXT = (
    "The task to follow: /api/tasks/{task_id} of the task created or, for a submit merged "
    "into an identical task, of the task it joined (merged_into), which does the work."
)


def _location(*, required: bool) -> dict[str, Any]:
    return {
        "Location": {
            "description": _LOCATION_TEXT + ("" if required else " Only for a submit."),
            "required": required,
            "schema": {"type": "string", "format": "uri-reference"},
        }
    }


_TASK_ID_QUERY = {"name": "task_id", "in": "query", "required": False, "schema": {"type": "string"}}
_LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "The id of the last event received: resume after it.",
    "schema": {"type": "string"},
}


_OBJECT_EVENTS = [f"{subject.value}_{change.value}" for subject in Subject for change in Change]
# One server-sent event as a client's parser sees it: its name and its data.
_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {
            "type": "string",
            "enum": [*(k.value for k in EventKind), *_OBJECT_EVENTS, "lagged", "reset"],
        },
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "anyOf": [
                    {"$ref": _REF.format(model="TaskEvent")},
                    {"$ref": _REF.format(model="ObjectEvent")},
                    {
                        "type": "object",
                        "required": ["event"],
                        "properties": {"event": {"const": "lagged"}},
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "required": ["event", "last_event_id"],
                        "properties": {
                            "event": {"const": "reset"},
                            "last_event_id": {"type": "integer"},
                        },
                        "additionalProperties": False,
                    },
                ]
            },
        },
    },
}


def _require_one_of(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A request schema as strict as its model: ``AT_LEAST_ONE_OF`` (a rule the params
    model checks, kept out of the params schema for assistants' sake) becomes an anyOf, and
    ``SCHEMA_RULES`` (rules across fields, kept out for the same reason) an allOf."""
    keys = getattr(model, "AT_LEAST_ONE_OF", ())
    if keys:
        schema["anyOf"] = [
            {"required": [key], "properties": {key: {"type": "string"}}} for key in keys
        ]
    rules = getattr(model, "SCHEMA_RULES", ())
    if rules:
        schema["allOf"] = list(rules)


class _Schemas:
    """The components' schemas: each command's params model and each answer model, by name."""

    def __init__(self, commands: list[Command[Any]]) -> None:
        self.params = {c.name: c.params for c in commands}
        self.answers: dict[str, type[BaseModel]] = {c.name: success_of(c.result) for c in commands}
        wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [
            *((m, "validation") for m in self.params.values()),
            *((m, "serialization") for m in self.answers.values()),
            (Failure, "serialization"),
        ]
        refs, top = models_json_schema(wanted, ref_template=_REF)
        self.schemas: dict[str, Any] = dict(top.get("$defs", {}))
        for model in self.params.values():
            _require_one_of(
                self.schemas[refs[(model, "validation")]["$ref"].rsplit("/", 1)[-1]], model
            )
        self._add(event_schema(ref_template=_REF))
        self._add(object_event_schema(ref_template=_REF))
        self.schemas["Event"] = _EVENT
        self._names: dict[Any, str] = {
            model: str(ref["$ref"]).rsplit("/", 1)[-1] for (model, _), ref in refs.items()
        }

    def _add(self, schema: dict[str, Any]) -> None:
        """A schema made apart (with its own ``$defs``) into the components, by its title."""
        for name, definition in schema.pop("$defs", {}).items():
            assert self.schemas.setdefault(name, definition) == definition, name
        self.schemas[schema["title"]] = schema

    def name(self, model: type[BaseModel]) -> str:
        return self._names[model]

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        return {"$ref": _REF.format(model=self.name(model))}

    def params_ref(self, command: str) -> dict[str, str]:
        return self.ref(self.params[command])

    def body_ref(self, route: Route) -> dict[str, str]:
        """The JSON body of a route whose body is the params: the command's params without
        those the path gives and those the route leaves out (a component of its own)."""
        left_out = {*route.path_keys, *route.body_excludes}
        if not left_out:
            return self.params_ref(route.command)
        schema = copy.deepcopy(self.schemas[self.name(self.params[route.command])])
        for key in left_out:
            schema["properties"].pop(key, None)
        schema["required"] = [k for k in schema.get("required", []) if k not in left_out]
        name = f"{route.operation_id[0].upper()}{route.operation_id[1:]}Body"
        schema["title"] = name
        self.schemas[name] = schema
        return {"$ref": _REF.format(model=name)}

    def answer(self, commands: list[str]) -> dict[str, Any]:
        """The success response of a route running ``commands``: their success envelopes."""
        refs = list(
            {self.name(self.answers[c]): self.ref(self.answers[c]) for c in commands}.values()
        )
        schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
        return {
            "description": "The command's success envelope",
            "content": {"application/json": {"schema": schema}},
        }

    def path(self, route: Route) -> list[dict[str, Any]]:
        """The route's path parameters, each with its param's schema."""
        props = self.schemas[self.name(self.params[route.command])].get("properties", {})
        return [
            {"name": key, "in": "path", "required": True, "schema": props[key]}
            for key in route.path_keys
        ]

    def query(self, route: Route) -> list[dict[str, Any]]:
        """The route's parameters: its path's, then its command's params in the query; each
        with its param's schema (a path's task_id is queue_manage's, bounds and all)."""
        props = self.schemas[self.name(self.params[route.command])].get("properties", {})
        path = [
            {"name": key, "in": "path", "required": True, "schema": props[key]}
            for key in route.path_keys
        ]
        taken = {*route.path_keys, *route.fixed}
        query = [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in props.items()
            if name not in taken
        ]
        return path + query


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _message(command: Command[Any], schemas: _Schemas) -> dict[str, Any]:
    """The ``POST /cmd`` body that runs ``command``."""
    params = schemas.params_ref(command.name)
    return {
        "type": "object",
        "title": command.name,
        "description": command.description,
        # params may be left out (or null) only when the command needs none of them
        "required": ["action", "params"] if _needs_params(command) else ["action"],
        "additionalProperties": False,
        "properties": {
            "action": {"const": command.name},
            "params": params if _needs_params(command) else {"anyOf": [params, {"type": "null"}]},
        },
    }


def _operation(route: Route, schemas: _Schemas, commands: list[Command[Any]]) -> dict[str, Any]:
    summary = route.summary or _description(route.command)
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "tags": [route.tag],
        "summary": summary[:120],
        "description": summary,
    }
    if route.open:
        op["security"] = []
    if route.params is Params.NONE:
        if route.operation_id == "streamEvents":
            op["parameters"] = [_TASK_ID_QUERY, _LAST_EVENT_ID]
        op["responses"] = _OWN_RESPONSES[route.operation_id]
        return op
    names = list(route.commands) or [c.name for c in commands]
    if route.params is Params.MESSAGE:
        op["requestBody"] = _json_body({"oneOf": [_message(c, schemas) for c in commands]})
    elif route.params is Params.SUBMIT:
        op["requestBody"] = _json_body(
            {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["task_type", "params"],
                        "additionalProperties": False,
                        "properties": {
                            "task_type": {"const": name},
                            "params": schemas.params_ref(name),
                        },
                    }
                    for name in route.commands
                ]
            }
        )
    elif route.params is Params.BODY:
        op["requestBody"] = _json_body(schemas.body_ref(route))
        if route.path_keys:
            op["parameters"] = schemas.path(route)
    else:
        op["parameters"] = schemas.query(route)
    op["responses"] = {**_success(route, schemas.answer(names)), **_ERRORS}
    return op


def _success(route: Route, answer: dict[str, Any]) -> dict[str, Any]:
    """The success response by its status: 202 and a Location for a submit, else 200 (with
    the Location a submit through ``/cmd`` carries)."""
    if route.params is Params.SUBMIT:
        described = "Accepted: the task is queued (its envelope names it)."
        return {"202": {**answer, "description": described, "headers": _location(required=True)}}
    if route.params is Params.MESSAGE:
        return {"200": {**answer, "headers": _location(required=False)}}
    return {"200": answer}


# MCP's streamable HTTP transport: JSON-RPC messages, not command envelopes. OpenAPI cannot
# describe its sessions (a request is valid only within one), so the MCP tests drive it with
# the SDK's client; this says what goes over the wire.
_JSON_RPC = {
    "JsonRpcMessage": {
        "type": "object",
        "description": "A JSON-RPC 2.0 request, notification or response of the MCP protocol.",
        "required": ["jsonrpc"],
        "properties": {
            "jsonrpc": {"const": "2.0"},
            "id": {"type": ["string", "integer", "null"]},
            "method": {"type": "string"},
            "params": {"type": "object"},
            "result": {"type": "object"},
        },
    },
    "JsonRpcError": {
        "type": "object",
        "description": "The MCP transport's refusal, as a JSON-RPC 2.0 error.",
        "required": ["jsonrpc", "error"],
        "properties": {
            "jsonrpc": {"const": "2.0"},
            "id": {"type": ["string", "integer", "null"]},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "integer"},
                    "message": {"type": "string"},
                    "data": {},
                },
            },
        },
    },
}
_MCP_ERROR = {"$ref": "#/components/responses/McpError"}
_JSON_RPC_ERROR_REF = {"$ref": _REF.format(model="JsonRpcError")}
_MCP_ERROR_TEXT = (
    "The agent's error envelope (a 400 REQUEST_HOST_NOT_ALLOWED for a Host it does not serve, "
    "a 403 REQUEST_ORIGIN_NOT_ALLOWED for a browser Origin not in allowed_origins), or the MCP "
    "transport's JSON-RPC error (no or an unknown session, a wrong Accept or Content-Type "
    "header); a request without a JSON Content-Type is refused in plain text."
)
_MCP_RESPONSES = {
    "200": {
        "description": "JSON-RPC answers: one as JSON, or a stream of them as server-sent events",
        "content": {
            "application/json": {"schema": {"$ref": _REF.format(model="JsonRpcMessage")}},
            "text/event-stream": {"schema": {"type": "object"}},
        },
    },
    "202": {"description": "A notification or response accepted (no body)"},
    **{status: _MCP_ERROR for status in ("400", "403", "404", "405", "406", "409", "415")},
    **{status: _ERRORS[status] for status in ("401", "413", "500", "503")},
    **_LIMITED,
}


def _mcp() -> dict[str, Any]:
    session = {
        "name": "Mcp-Session-Id",
        "in": "header",
        "description": "The session the server gave in its answer to initialize.",
        "schema": {"type": "string"},
    }
    body = _json_body(
        {
            "anyOf": [
                {"$ref": _REF.format(model="JsonRpcMessage")},
                {"type": "array", "items": {"$ref": _REF.format(model="JsonRpcMessage")}},
            ]
        }
    )
    return {
        method.lower(): {
            "operationId": f"mcp{method.capitalize()}",
            "tags": ["mcp"],
            "summary": "MCP over streamable HTTP: every command as a tool.",
            "parameters": [{**session, "required": method != "POST"}],
            **({"requestBody": body} if method == "POST" else {}),
            "responses": _MCP_RESPONSES,
        }
        for method in MCP_METHODS
    }


# What holds for every operation and no per-field schema repeats.
_ABOUT = (
    "Docker builds, pushes and pulls as queued tasks, and the queue's control. Every route but "
    "/health and this document needs a bearer token. No text parameter may hold a NUL "
    "character or a lone surrogate (400 VALIDATION_INVALID_FORMAT)."
)


@cache
def _schemas() -> _Schemas:
    return _Schemas(list(REGISTRY))


def success_schema_name(command: str) -> str:
    """The name, under ``components/schemas``, of ``command``'s success envelope."""
    schemas = _schemas()
    return schemas.name(schemas.answers[command])


@cache
def document() -> dict[str, Any]:
    commands = list(REGISTRY)
    schemas = _schemas()
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, schemas, commands
        )
    paths[MCP_PATH] = _mcp()
    failure = {"application/json": {"schema": schemas.ref(Failure)}}
    mcp_error = {
        "application/json": {"schema": {"anyOf": [schemas.ref(Failure), _JSON_RPC_ERROR_REF]}},
        "application/octet-stream": {"schema": {"type": "string"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ai-admin", "version": __version__, "description": _ABOUT},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [
            {"name": "commands", "description": "Any command, and the list of them."},
            {"name": "tasks", "description": "Submit, read and control Docker tasks."},
            {"name": "queue", "description": "The queue as a whole."},
            {"name": "schedules", "description": "Tasks submitted on a schedule."},
            {"name": "batches", "description": "Tasks submitted together and run as one."},
            {"name": "queues", "description": "The named queues: limits, pause, counts."},
            {"name": "events", "description": "Live task changes."},
            {"name": "agent", "description": "Health, metrics and this document."},
            {"name": "mcp", "description": "The same commands as MCP tools."},
        ],
        "paths": paths,
        "components": {
            "schemas": {**schemas.schemas, **_JSON_RPC},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                **{
                    name: {"description": description, "content": failure}
                    for name, description in _RESPONSES.items()
                },
                "McpError": {"description": _MCP_ERROR_TEXT, "content": mcp_error},
            },
        },
    }


def _needs_params(command: Command[Any]) -> bool:
    """Whether a message must carry params: a required field, or one of a set (a build's)."""
    fields = command.params.model_fields.values()
    return any(f.is_required() for f in fields) or bool(
        getattr(command.params, "AT_LEAST_ONE_OF", ())
    )


def _description(name: str) -> str:
    command = REGISTRY.get(name)
    assert command is not None, name
    return command.description
