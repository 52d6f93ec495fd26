"""The HTTP routes: ``POST /cmd`` and REST, all running registered commands, registered from
the route table (``route_table.ROUTES``) that the OpenAPI document is built from too.

A submitted task is found at its ``Location``: ``POST /api/tasks`` answers ``202 Accepted``
with it, ``POST /cmd`` keeps its ``200`` envelope and carries the same header. A submit merged
into an identical task points at the task it joined (``merged_into``): that one does the work
and ends with the outcome, while the merged record itself ends at once as ``merged``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ai_admin.agent import Agent
from ai_admin.commands import REGISTRY, Dispatcher, Reply
from ai_admin.commands.dispatcher import error_reply
from ai_admin.errors import BadRequest, ErrorCode
from ai_admin.http import metrics, openapi, sse
from ai_admin.http.route_table import ROUTES, SUBMITTABLE, Params, Route, task_location

AGENT = web.AppKey("agent", Agent)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
ACCESS = web.RequestKey("access", str)  # set by the auth middleware: "read" or "write"
EVENT_STREAMS = web.AppKey("event_streams", sse.EventStreams)
_SUBMIT_KEYS = frozenset({"task_type", "params"})
_LIST_PARAMS = frozenset({"status"})  # query parameters that may be repeated
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reply_response(reply: Reply) -> web.Response:
    return web.json_response(reply.envelope, status=reply.status, dumps=_dumps)


def submitted_location(reply: Reply) -> str | None:
    """Where a task a submit created can be followed (None for any other answer): the task
    it was merged into, if it was, else its own."""
    data = reply.envelope.get("data")
    if not reply.success or reply.envelope.get("action") not in SUBMITTABLE:
        return None
    assert isinstance(data, dict), reply.envelope
    return task_location(str(data.get("merged_into") or data["task_id"]))


def _located(reply: Reply, *, accepted: bool) -> web.Response:
    """The reply, with ``Location`` for a created task; ``accepted``: and status 202."""
    response = reply_response(reply)
    location = submitted_location(reply)
    if location is not None:
        response.headers["Location"] = location
        if accepted:
            response.set_status(202)
    return response


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _can_write(request: web.Request) -> bool:
    return bool(request.get(ACCESS) == "write")


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _json_number(text: str) -> float | int:
    """A JSON number with a fraction or exponent: an integer when it has no fractional part
    (``15.0``, ``1e2``), as JSON Schema counts it, so an ``integer`` param takes it."""
    value = float(text)
    return int(value) if value.is_integer() else value


async def read_body(request: web.Request) -> bytes:
    """The body, which must arrive within ``request_head_timeout_s`` once a handler asks for
    it: a client trickling its body holds a connection as one trickling its head would."""
    limit_s = request.app[AGENT].settings.request_head_timeout_s
    try:
        async with asyncio.timeout(limit_s):
            return await request.read()
    except TimeoutError:
        raise BadRequest(
            f"The request body did not arrive within {limit_s:g} s.",
            code=ErrorCode.REQUEST_INVALID_MESSAGE,
            details={"request_head_timeout_s": limit_s},
        ) from None


async def _json_body(request: web.Request) -> Any:
    raw = await read_body(request)
    if not raw.strip():
        raise BadRequest(
            "The request body is empty; send a JSON object.", code=ErrorCode.REQUEST_INVALID_JSON
        )
    try:
        return json.loads(raw, parse_constant=_not_json, parse_float=_json_number)
    except ValueError as exc:
        raise BadRequest(
            f"The body is not valid JSON: {exc}.", code=ErrorCode.REQUEST_INVALID_JSON
        ) from None
    except RecursionError:
        raise BadRequest(
            "The body is nested too deeply to be a command message.",
            code=ErrorCode.REQUEST_INVALID_JSON,
        ) from None


def _query(request: web.Request, *, path_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """The query parameters as command params; a key the path sets, or a repeated key that
    takes one value, is refused rather than silently dropped."""
    params: dict[str, Any] = {}
    for key in request.query:
        if key in params:
            continue
        values = request.query.getall(key)
        if key in path_keys:
            raise BadRequest(
                f"{key} is given by the path; remove it from the query string.",
                code=ErrorCode.VALIDATION_INVALID_PARAMS,
                details={"errors": [{"field": f"params.{key}", "problem": "set by the path"}]},
            )
        if len(values) > 1 and key not in _LIST_PARAMS:
            raise BadRequest(
                f"{key} is given {len(values)} times; give it once.",
                code=ErrorCode.VALIDATION_INVALID_PARAMS,
                details={"errors": [{"field": f"params.{key}", "problem": "repeated"}]},
            )
        params[key] = values if key in _LIST_PARAMS else values[0]
    return params


async def _run(request: web.Request, name: str, params: Any, *, strict: bool) -> Reply:
    command = REGISTRY.get(name)
    assert command is not None, name
    return await request.app[DISPATCHER].run(
        command, params, can_write=_can_write(request), strict=strict
    )


async def _run_query(
    request: web.Request, name: str, *, path: dict[str, str] | None = None
) -> web.Response:
    """A command whose params come from the query string (and the path)."""
    path = path or {}
    try:
        params = {**_query(request, path_keys=tuple(path)), **path}
    except BadRequest as exc:
        return reply_response(error_reply(exc, name))
    return reply_response(await _run(request, name, params, strict=False))


async def cmd(request: web.Request) -> web.Response:
    try:
        message = await _json_body(request)
    except BadRequest as exc:
        return reply_response(error_reply(exc))
    reply = await request.app[DISPATCHER].dispatch(message, can_write=_can_write(request))
    return _located(reply, accepted=False)


async def health(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].health())


def query_handler(route: Route) -> Handler:
    """A command whose params come from the query string, the path and the route itself."""
    name, fixed = route.command, dict(route.fixed)

    async def handle(request: web.Request) -> web.Response:
        path = {key: request.match_info[key] for key in route.path_keys} | fixed
        return await _run_query(request, name, path=path)

    return handle


def body_handler(route: Route) -> Handler:
    """A command whose params are the JSON body (an object), and the path's parameters."""
    name = route.command

    async def handle(request: web.Request) -> web.Response:
        path = {key: request.match_info[key] for key in route.path_keys}
        try:
            body = await _json_body(request)
            if not isinstance(body, dict):
                raise BadRequest(
                    f"Send the params of {name} as a JSON object.",
                    code=ErrorCode.VALIDATION_INVALID_PARAMS,
                )
            taken = sorted(key for key in path if key in body)
            if taken:
                raise BadRequest(
                    f"{taken[0]} is given by the path; remove it from the body.",
                    code=ErrorCode.VALIDATION_INVALID_PARAMS,
                    details={
                        "errors": [{"field": f"params.{taken[0]}", "problem": "set by the path"}]
                    },
                )
        except BadRequest as exc:
            return reply_response(error_reply(exc, name))
        return reply_response(await _run(request, name, {**body, **path}, strict=True))

    return handle


async def submit_task(request: web.Request) -> web.Response:
    try:
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("task_type") not in SUBMITTABLE:
            raise BadRequest(
                'Send {"task_type": "docker_build" | "docker_push" | "docker_pull", '
                '"params": {...}}.',
                code=ErrorCode.VALIDATION_INVALID_PARAMS,
            )
        extra = sorted(str(k) for k in body if k not in _SUBMIT_KEYS)
        if extra:
            raise BadRequest(
                f"Unknown keys {extra[:20]}: a submission has only task_type and params.",
                code=ErrorCode.REQUEST_INVALID_MESSAGE,
                details={"unknown_keys": extra[:20]},
            )
    except BadRequest as exc:
        return reply_response(error_reply(exc))
    params = body.get("params")
    reply = await _run(request, body["task_type"], {} if params is None else params, strict=True)
    return _located(reply, accepted=True)


async def events(request: web.Request) -> web.StreamResponse:
    app = request.app
    return await sse.stream_events(
        request, app[AGENT], app[EVENT_STREAMS], request.query.get("task_id")
    )


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(openapi.document())


# The routes that run no command, by operation id; the rest are built from the table.
_OWN_HANDLERS: dict[str, Handler] = {
    "getHealth": health,
    "streamEvents": events,
    "getMetrics": metrics.serve_metrics,
    "getOpenApi": openapi_document,
}


def handler(route: Route) -> Handler:
    if route.params is Params.MESSAGE:
        return cmd
    if route.params is Params.SUBMIT:
        return submit_task
    if route.params is Params.QUERY:
        return query_handler(route)
    if route.params is Params.BODY:
        return body_handler(route)
    return _OWN_HANDLERS[route.operation_id]


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        if route.method == "GET":  # and HEAD, as aiohttp adds it
            app.router.add_get(route.path, handler(route))
        else:
            app.router.add_route(route.method, route.path, handler(route))
