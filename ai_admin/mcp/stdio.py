"""``ai-admin mcp``: a whole agent in this process, spoken to over stdin and stdout.

The queue and the Docker executors run here, with the data directory of the settings; stdout
carries only the protocol (the SDK points file descriptor 1 at stderr while it serves, so a
stray print cannot corrupt it) and the log goes to stderr. The server ends when the client
closes stdin; running tasks then get the settings' shutdown grace before the queue stops.
"""

from __future__ import annotations

from loguru import logger
from mcp.server.stdio import stdio_server

from ai_admin.agent import Agent, settle_heap
from ai_admin.config import Settings
from ai_admin.mcp.server import build_server

__all__ = ["serve_stdio"]


async def serve_stdio(settings: Settings) -> None:
    agent = Agent(settings)
    await agent.start()
    server = build_server(agent)
    settle_heap()
    logger.info("ai-admin MCP server on stdio (data in {})", settings.data_dir)
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await agent.stop()
    logger.info("stopped")
