"""The dashboard's own requests through the Origin check.

A browser sends ``Origin`` with every POST, so the page's own commands (served by the agent,
calling the agent) carry the agent's origin, which ``allowed_origins`` does not list. A request
whose Origin is exactly ``<scheme>://<Host>`` comes from a page of the agent itself, provided
that Host is one the agent names (``HostPolicy``): a page of another site that DNS rebinding
points at the agent still sends its own Host and is refused. An agent that accepts any Host
(listening on every interface with ``allowed_hosts`` empty) cannot tell its own origin from a
rebinding site's, so there the page's commands need its origin in ``allowed_origins``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from aiohttp import web
from aiohttp.typedefs import Middleware

from ai_admin.http.guard import HostPolicy, OriginPolicy, guard_middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def own_origin_guard(hosts: HostPolicy, origins: OriginPolicy) -> Middleware:
    """``guard_middleware(hosts, origins)``, which also lets a same-origin request through
    when its Host is one the agent names."""
    guard = guard_middleware(hosts, origins)
    named = replace(hosts, any_host=False)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        origin = request.headers.get("Origin")
        if host and origin and named.allows(host):
            own = f"{request.scheme}://{host}".lower()
            if origin.strip().rstrip("/").lower() == own:
                return await handler(request)
        return await guard(request, handler)

    return check
