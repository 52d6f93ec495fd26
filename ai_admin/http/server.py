"""The HTTP door on real sockets, as ``ai-admin serve`` runs it.

``app_runner`` builds the app (``create_app``) and its aiohttp runner; ``listening`` binds the
address, serves it through the connection cap (``listener.ConnectionGate``) and logs where.
They are two steps so the caller can settle its heap between them: the app is built, and no
connection is served yet. Leaving each undoes it: no connection is accepted any more, then the
app shuts down (its event streams and MCP sessions end).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from loguru import logger

from ai_admin.agent import Agent
from ai_admin.config import Settings
from ai_admin.http.app import create_app
from ai_admin.http.auth import Tokens
from ai_admin.http.guard import HostPolicy, log_host_rule
from ai_admin.http.listener import ConnectionGate, bind, connection_cap, url_of

__all__ = ["CannotListen", "app_runner", "listening"]


class CannotListen(Exception):
    """The address is taken or not ours to bind; the message names it."""


def _handler_args(settings: Settings) -> dict[str, Any]:
    # keepalive_timeout also runs from the moment a connection opens: a request head (or a
    # connection's first request) not complete within it closes the connection.
    return {"access_log": None, "keepalive_timeout": settings.request_head_timeout_s}


@asynccontextmanager
async def app_runner(agent: Agent, tokens: Tokens) -> AsyncIterator[web.AppRunner]:
    """The agent's app, set up and not yet listening; cleaned up on exit."""
    args = _handler_args(agent.settings)
    runner = web.AppRunner(create_app(agent, tokens), handle_signals=False, **args)
    await runner.setup()
    try:
        yield runner
    finally:
        await runner.cleanup()


@asynccontextmanager
async def listening(runner: web.AppRunner, settings: Settings) -> AsyncIterator[None]:
    """``runner``'s app served on ``settings.host:port``, at most ``max_connections`` at once.

    Raises ``CannotListen`` when the address cannot be bound."""
    assert runner.server is not None
    gate = ConnectionGate(
        runner.server,
        connection_cap(settings.max_connections),
        _handler_args(settings),
        stall_s=settings.request_head_timeout_s,
    )
    try:
        try:
            sockets = bind(settings.host, settings.port)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise CannotListen(
                f"cannot listen on {settings.host}:{settings.port}: {reason}"
            ) from None
        gate.serve(sockets)
        for sock in sockets:
            logger.info("ai-admin listening on {} (data in {})", url_of(sock), settings.data_dir)
        logger.info("serving at most {} connections at once", gate.cap)
        log_host_rule(HostPolicy.from_settings(settings), settings.host)
        yield
    finally:
        await gate.close()
