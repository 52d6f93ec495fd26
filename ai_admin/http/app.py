"""The aiohttp application: middlewares (access log, errors, Host/Origin guard, the dashboard's
page, auth) and routes over the dispatcher."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from loguru import logger

from ai_admin.agent import Agent
from ai_admin.commands import Dispatcher
from ai_admin.commands.dispatcher import error_reply
from ai_admin.errors import AiAdminError, BadRequest, ErrorCode
from ai_admin.http.access_log import access_log_middleware
from ai_admin.http.auth import Tokens
from ai_admin.http.dashboard import dashboard_middleware, own_origin_guard
from ai_admin.http.guard import HostPolicy, OriginPolicy
from ai_admin.http.mcp_route import mount_mcp
from ai_admin.http.metrics import METRICS, AgentMetrics
from ai_admin.http.route_table import OPEN_PATHS
from ai_admin.http.routes import (
    ACCESS,
    AGENT,
    DISPATCHER,
    EVENT_STREAMS,
    add_routes,
    reply_response,
)
from ai_admin.http.sse import EventStreams

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CHALLENGES = {
    ErrorCode.AUTH_REQUIRED: 'Bearer realm="ai-admin"',
    ErrorCode.AUTH_INVALID_TOKEN: 'Bearer realm="ai-admin", error="invalid_token"',
}
_HTTP_CODES = {
    404: ErrorCode.REQUEST_NOT_FOUND,
    405: ErrorCode.REQUEST_METHOD_NOT_ALLOWED,
    413: ErrorCode.REQUEST_TOO_LARGE,
}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as an envelope with a code; a 500 never carries a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = reply_response(error_reply(_http_error(request, exc)))
        if isinstance(exc, web.HTTPMethodNotAllowed):
            response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return response
    except AiAdminError as exc:
        response = reply_response(error_reply(exc))
        if exc.code in _CHALLENGES:  # RFC 6750: say which scheme the token goes in
            response.headers["WWW-Authenticate"] = _CHALLENGES[exc.code]
        return response
    except Exception:
        logger.exception("unhandled error on {} {}", request.method, request.path)
        error = AiAdminError(
            "The agent hit an internal error; the details are in its log.",
            code=ErrorCode.INTERNAL_ERROR,
        )
        return reply_response(error_reply(error))


def _http_error(request: web.Request, exc: web.HTTPException) -> BadRequest:
    """aiohttp's own refusals, told in the agent's terms: what was wrong, what to send."""
    code = _HTTP_CODES.get(exc.status, ErrorCode.REQUEST_INVALID_MESSAGE)
    where = f"{request.method} {request.path[:200]}"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        return BadRequest(
            f"{where}: this route takes {', '.join(allowed)}.",
            code=code,
            details={"allowed_methods": allowed},
        )
    if exc.status == 404:
        return BadRequest(f"{where}: no such route.", code=code)
    if exc.status == 413:
        limit = request.app[AGENT].settings.max_body_bytes
        return BadRequest(
            f"The body is larger than the {limit} bytes the agent accepts.",
            code=code,
            details={"max_body_bytes": limit},
        )
    return BadRequest(exc.reason, code=code)


def auth_middleware(tokens: Tokens) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise BadRequest("Send Authorization: Bearer <token>.", code=ErrorCode.AUTH_REQUIRED)
        access = tokens.access(presented.strip())
        if access is None:
            raise BadRequest("The bearer token is not valid.", code=ErrorCode.AUTH_INVALID_TOKEN)
        request[ACCESS] = access
        return await handler(request)

    return check


def create_app(agent: Agent, tokens: Tokens) -> web.Application:
    settings = agent.settings
    # The dashboard's own page may call the agent from the agent's origin.
    guard = own_origin_guard(
        HostPolicy.from_settings(settings), OriginPolicy.from_settings(settings)
    )
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            access_log_middleware,  # outermost: every request's line, whatever answered it
            errors_middleware,
            guard,
            dashboard_middleware,  # the page and its files hold no data: no token
            auth_middleware(tokens),
        ],
    )
    app[AGENT] = agent
    app[METRICS] = AgentMetrics(agent)
    app[EVENT_STREAMS] = streams = EventStreams(agent, settings.max_event_streams_per_token)
    app.on_startup.append(streams.start)
    app.on_cleanup.append(streams.stop)
    app[DISPATCHER] = Dispatcher(agent)
    add_routes(app)
    mount_mcp(app, agent)

    async def end_event_streams(app: web.Application) -> None:
        agent.queue.end_subscriptions()

    app.on_shutdown.append(end_event_streams)
    return app
