"""``ai-admin serve``: run the agent until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal
from typing import Any

from aiohttp import web
from loguru import logger

from ai_admin.agent import Agent
from ai_admin.config import Settings
from ai_admin.http.app import create_app
from ai_admin.http.auth import TOKEN_FILE, load_tokens
from ai_admin.http.guard import HostPolicy, log_host_rule
from ai_admin.http.listener import ConnectionGate, bind, connection_cap, url_of


class CannotListen(Exception):
    """The address is taken or not ours to bind; the message names it."""


def settle_heap() -> None:
    """Move everything built at start-up out of the garbage collector's sight.

    Modules, models and schemas live as long as the process; without this every full
    collection walks them again, a pause that shows as tail latency under load.
    """
    gc.collect()
    gc.freeze()


async def serve(settings: Settings) -> None:
    tokens, generated = load_tokens(settings)
    if generated:
        path = settings.data_dir / TOKEN_FILE
        print(f"ai-admin: generated an API token (saved in {path}, shown once): {tokens.operator}")
    agent = Agent(settings)
    await agent.start()
    # keepalive_timeout also runs from the moment a connection opens: a request head (or a
    # connection's first request) not complete within it closes the connection.
    handler_args: dict[str, Any] = {
        "access_log": None,
        "keepalive_timeout": settings.request_head_timeout_s,
    }
    runner = web.AppRunner(create_app(agent, tokens), handle_signals=False, **handler_args)
    await runner.setup()
    settle_heap()
    assert runner.server is not None
    gate = ConnectionGate(
        runner.server,
        connection_cap(settings.max_connections),
        handler_args,
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
        await _until_signalled()
        logger.info("shutting down: running tasks get {} s to finish", settings.shutdown_grace_s)
    finally:
        await gate.close()
        await runner.cleanup()
        await agent.stop()
    logger.info("stopped")


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
