"""Serving the dashboard's fixed files, before the token check and beside the API's routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ai_admin.http.dashboard.assets import SECURITY_HEADERS, asset

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_UI_PREFIX = "/ui/"
_METHODS = ("GET", "HEAD")


def _is_dashboard(path: str) -> bool:
    return path == "/" or path.startswith(_UI_PREFIX)


@web.middleware
async def dashboard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``/`` and the files under ``/ui/``: GET or HEAD, no token (they hold no data). Any other
    path under ``/ui/`` is a 404; any other path goes on to the API."""
    if not _is_dashboard(request.path):
        return await handler(request)
    found = asset(request.path)
    if found is None:
        raise web.HTTPNotFound()
    if request.method not in _METHODS:
        raise web.HTTPMethodNotAllowed(request.method, _METHODS)
    headers = {**SECURITY_HEADERS, "ETag": found.etag}
    if found.matches(request.headers.get("If-None-Match")):
        return web.Response(status=304, headers=headers)
    return web.Response(body=found.body, headers={**headers, "Content-Type": found.content_type})
