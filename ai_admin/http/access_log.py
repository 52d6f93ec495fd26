"""One log line per HTTP request, through the agent's log (text or JSON, see ``ai_admin.logging``).

The line says who asked what and how it went::

    127.0.0.1 operator "GET /api/tasks" 200 1234 B 3.1 ms

and in the JSON format the same as fields: ``client``, ``role``, ``method``, ``path``,
``status``, ``bytes``, ``duration_ms``. ``role`` names the token's kind (``operator``,
``read-only``, ``-`` when none was accepted), never a token. The query string is left out
whole (a client may put a credential there), and the path is the raw, still percent-encoded
one, so no byte a client sent can start a new line. ``/health``, which monitors call every few
seconds, is logged at DEBUG; every other request at INFO. An event stream is logged when it
ends, with the time it was open.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from loguru import logger

from ai_admin.http.routes import ACCESS

__all__ = ["access_log_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ROLES = {"write": "operator", "read": "read-only"}
_QUIET_PATHS = frozenset({"/health"})
_MAX_PATH_CHARS = 200
# What a client cannot learn from the answer either: the agent closed nothing, it gave up.
_CLIENT_GONE = 499


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost middleware: times the request and logs its line once it is answered."""
    started = time.perf_counter()
    status, size = 500, 0
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # a redirect or refusal no inner middleware turned
        status, size = exc.status, len(exc.body or b"") if isinstance(exc.body, bytes) else 0
        raise
    except BaseException as exc:
        if not isinstance(exc, Exception):  # cancelled: the client went away mid-request
            status = _CLIENT_GONE
        raise
    else:
        status, size = response.status, _size(response)
        return response
    finally:
        _log(request, status, size, (time.perf_counter() - started) * 1000)


def _size(response: web.StreamResponse) -> int:
    """Body bytes: as written for a streamed answer, the body's length for one not sent yet."""
    if response.prepared:
        return response.body_length
    return response.content_length or 0


def _log(request: web.Request, status: int, size: int, duration_ms: float) -> None:
    client = request.remote or "-"
    role = _ROLES.get(request.get(ACCESS, ""), "-")
    path = _printable(request.rel_url.raw_path[:_MAX_PATH_CHARS])
    level = "DEBUG" if request.path in _QUIET_PATHS else "INFO"
    logger.bind(
        client=client,
        role=role,
        method=request.method,
        path=path,
        status=status,
        bytes=size,
        duration_ms=round(duration_ms, 1),
    ).log(
        level,
        '{} {} "{} {}" {} {} B {:.1f} ms',
        client,
        role,
        request.method,
        path,
        status,
        size,
        duration_ms,
    )


def _printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
