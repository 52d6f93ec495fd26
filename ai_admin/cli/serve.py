"""``ai-admin serve``: run the agent until SIGINT or SIGTERM.

The HTTP side (the app, its sockets, the connection cap) is ``ai_admin.http.server``'s; this is
the process around it: the tokens, the agent, the heap (``settle_heap``), the signals.
"""

from __future__ import annotations

import asyncio
import signal

from loguru import logger

from ai_admin.agent import Agent, settle_heap
from ai_admin.config import Settings
from ai_admin.http.auth import TOKEN_FILE, load_tokens
from ai_admin.http.server import CannotListen, app_runner, listening

__all__ = ["CannotListen", "serve"]


async def serve(settings: Settings) -> None:
    tokens, generated = load_tokens(settings)
    if generated:
        path = settings.data_dir / TOKEN_FILE
        print(f"ai-admin: generated an API token (saved in {path}, shown once): {tokens.operator}")
    agent = Agent(settings)
    await agent.start()
    # Once started: a start-up that fails says so in its one line, and nothing else.
    logger.info("configuration file: {}", settings.config_file or "none (defaults)")
    try:
        async with app_runner(agent, tokens) as runner:
            settle_heap()
            async with listening(runner, settings):
                await _until_signalled()
                logger.info(
                    "shutting down: running tasks get {} s to finish", settings.shutdown_grace_s
                )
    finally:
        await agent.stop()
    logger.info("stopped")


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
