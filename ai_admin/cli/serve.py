"""``ai-admin serve``: run the agent until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal

from aiohttp import web
from loguru import logger

from ai_admin.agent import Agent
from ai_admin.config import Settings
from ai_admin.http.app import create_app
from ai_admin.http.auth import TOKEN_FILE, load_tokens


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
    runner = web.AppRunner(create_app(agent, tokens), access_log=None, handle_signals=False)
    await runner.setup()
    settle_heap()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:
            raise CannotListen(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
            ) from None
        for host, port in (a[:2] for a in runner.addresses):
            logger.info(
                "ai-admin listening on http://{}:{} (data in {})", host, port, settings.data_dir
            )
        await _until_signalled()
        logger.info("shutting down: running tasks get {} s to finish", settings.shutdown_grace_s)
    finally:
        await runner.cleanup()
        await agent.stop()
    logger.info("stopped")


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
