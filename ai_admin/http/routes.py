"""The HTTP routes: ``POST /cmd`` and REST, all running registered commands."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ai_admin.agent import Agent
from ai_admin.commands import REGISTRY, Dispatcher, Reply
from ai_admin.commands.dispatcher import error_reply
from ai_admin.errors import BadRequest, ErrorCode
from ai_admin.http import metrics, openapi, sse

AGENT = web.AppKey("agent", Agent)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
ACCESS = "access"  # request key set by the auth middleware: "read" or "write"
_SUBMITTABLE = ("docker_build", "docker_push", "docker_pull")


def reply_response(reply: Reply) -> web.Response:
    return web.json_response(reply.envelope, status=reply.status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _can_write(request: web.Request) -> bool:
    return bool(request.get(ACCESS) == "write")


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise BadRequest(
            "The request body is empty; send a JSON object.", code=ErrorCode.REQUEST_INVALID_JSON
        )
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest(
            f"The body is not valid JSON: {exc}.", code=ErrorCode.REQUEST_INVALID_JSON
        ) from None


async def _run(request: web.Request, name: str, params: Any) -> web.Response:
    command = REGISTRY.get(name)
    assert command is not None, name
    reply = await request.app[DISPATCHER].run(command, params, can_write=_can_write(request))
    return reply_response(reply)


async def cmd(request: web.Request) -> web.Response:
    try:
        message = await _json_body(request)
    except BadRequest as exc:
        return reply_response(error_reply(exc))
    reply = await request.app[DISPATCHER].dispatch(message, can_write=_can_write(request))
    return reply_response(reply)


async def health(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].health())


async def list_tasks(request: web.Request) -> web.Response:
    params: dict[str, Any] = dict(request.query)
    if "status" in params:
        params["status"] = request.query.getall("status")
    return await _run(request, "queue_list_tasks", params)


async def get_task(request: web.Request) -> web.Response:
    params = {**request.query, "task_id": request.match_info["task_id"]}
    return await _run(request, "queue_task_status", params)


async def submit_task(request: web.Request) -> web.Response:
    try:
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("task_type") not in _SUBMITTABLE:
            raise BadRequest(
                'Send {"task_type": "docker_build" | "docker_push" | "docker_pull", '
                '"params": {...}}.',
                code=ErrorCode.VALIDATION_INVALID_PARAMS,
            )
    except BadRequest as exc:
        return reply_response(error_reply(exc))
    return await _run(request, body["task_type"], body.get("params") or {})


async def manage_task(request: web.Request) -> web.Response:
    params = {
        **request.query,
        "task_id": request.match_info["task_id"],
        "action": request.match_info["action"],
    }
    return await _run(request, "queue_manage", params)


async def stats(request: web.Request) -> web.Response:
    return await _run(request, "queue_status", dict(request.query))


async def commands(request: web.Request) -> web.Response:
    return await _run(request, "commands", {})


async def events(request: web.Request) -> web.StreamResponse:
    return await sse.stream_events(request, request.app[AGENT], request.query.get("task_id"))


async def prometheus(request: web.Request) -> web.Response:
    data = metrics.render(await request.app[AGENT].queue.get_queue_stats())
    return web.Response(body=data, headers={"Content-Type": "text/plain; version=0.0.4"})


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(openapi.document())


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/health", health)
    r.add_post("/cmd", cmd)
    r.add_get("/api/tasks", list_tasks)
    r.add_post("/api/tasks", submit_task)
    r.add_get("/api/tasks/{task_id}", get_task)
    r.add_post("/api/tasks/{task_id}/{action:pause|resume|retry|cancel}", manage_task)
    r.add_get("/api/stats", stats)
    r.add_get("/api/commands", commands)
    r.add_get("/api/events", events)
    r.add_get("/metrics", prometheus)
    r.add_get("/openapi.json", openapi_document)
