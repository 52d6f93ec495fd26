"""The aiohttp application: middlewares (errors, auth) and routes over the dispatcher."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from loguru import logger

from ai_admin.agent import Agent
from ai_admin.commands import Dispatcher
from ai_admin.commands.dispatcher import error_reply
from ai_admin.errors import AiAdminError, BadRequest, ErrorCode
from ai_admin.http.auth import Tokens
from ai_admin.http.routes import ACCESS, AGENT, DISPATCHER, add_routes, reply_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OPEN_PATHS = frozenset({"/health"})
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
        code = _HTTP_CODES.get(exc.status, ErrorCode.REQUEST_INVALID_MESSAGE)
        return reply_response(error_reply(BadRequest(exc.reason, code=code)))
    except AiAdminError as exc:
        return reply_response(error_reply(exc))
    except Exception:
        logger.exception("unhandled error on {} {}", request.method, request.path)
        error = AiAdminError(
            "The agent hit an internal error; the details are in its log.",
            code=ErrorCode.INTERNAL_ERROR,
        )
        return reply_response(error_reply(error))


def auth_middleware(tokens: Tokens) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in _OPEN_PATHS:
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
    app = web.Application(
        client_max_size=agent.settings.max_body_bytes,
        middlewares=[errors_middleware, auth_middleware(tokens)],
    )
    app[AGENT] = agent
    app[DISPATCHER] = Dispatcher(agent)
    add_routes(app)

    async def end_event_streams(app: web.Application) -> None:
        agent.queue.end_subscriptions()

    app.on_shutdown.append(end_event_streams)
    return app
