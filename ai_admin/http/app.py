"""The aiohttp application and how it is served."""

from __future__ import annotations

from aiohttp import web

from ai_admin.agent import Agent

AGENT_KEY = web.AppKey("agent", Agent)


async def health(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT_KEY].health())


def create_app(agent: Agent) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[AGENT_KEY] = agent
    app.router.add_get("/health", health)
    return app
