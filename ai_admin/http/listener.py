"""The agent's listening sockets, with a cap on the connections it serves at once.

Every open connection costs a file descriptor. Left alone, an agent whose limit is 256 that
is handed 300 idle connections has no descriptor left for its database, the Docker client or
its log, and ``/health`` fails with it. So the agent accepts connections itself, one at a
time, while fewer than ``cap`` are open; further ones wait in the kernel's listen backlog
(costing the process nothing) until one closes. The cap is ``max_connections``, kept
``FD_RESERVE`` below the process's descriptor limit; idle and slow connections are closed by
the request-head timeout (``request_head_timeout_s``, aiohttp's ``keepalive_timeout``, which
also bounds the wait for a connection's first request), so room always comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import socket

from aiohttp import web
from aiohttp.web_request import BaseRequest
from loguru import logger

from ai_admin.commands.dispatcher import error_reply
from ai_admin.errors import BadRequest, ErrorCode
from ai_admin.http.routes import reply_response

FD_RESERVE = 64  # descriptors kept for the database, the Docker client, the log, threads
BACKLOG = 512
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_RETRY_ACCEPT_S = 1.0


def connection_cap(max_connections: int) -> int:
    """``max_connections``, kept ``FD_RESERVE`` below the descriptor limit.

    The soft limit is first raised towards the hard one as far as the cap needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY:
        return max_connections
    room = soft - FD_RESERVE if soft > 2 * FD_RESERVE else soft // 2
    return max(1, min(max_connections, room))


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address ``host`` names, as ``loop.create_server`` makes."""
    infos = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_ADDRCONFIG
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _QuietHandler(web.RequestHandler):
    """Answers a request aiohttp's parser refuses with the agent's envelope.

    aiohttp's own answer quotes the refused header line, which may hold a token; the agent's
    says only that the request was not valid HTTP."""

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        answer = super().handle_error(request, status, exc, message)
        if status == 500:  # aiohttp's generic text, which quotes nothing
            return answer
        error = BadRequest(
            "The request is not valid HTTP (a malformed request line or header).",
            code=ErrorCode.REQUEST_INVALID_MESSAGE,
        )
        quiet = reply_response(error_reply(error))
        quiet.force_close()
        return quiet


class ConnectionGate:
    """Accepts connections for an aiohttp server while fewer than ``cap`` are open."""

    def __init__(self, server: web.Server, cap: int) -> None:
        self.cap = cap
        self.open = 0
        self._server = server
        # The protocol factory web.Server is, with the quiet handler in place of aiohttp's.
        self._protocol = lambda: _QuietHandler(server, loop=server._loop, **server._kwargs)
        self._room = asyncio.Event()
        self._room.set()
        self._freed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sockets: list[socket.socket] = []
        counted = server.connection_lost

        def connection_lost(handler: web.RequestHandler, exc: BaseException | None = None) -> None:
            counted(handler, exc)
            self._release()

        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def serve(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            self._sockets.append(sock)
            self._tasks.append(asyncio.create_task(self._accept(sock), name="ai-admin-accept"))

    async def close(self) -> None:
        """Stop accepting and close the listening sockets; open connections stay."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sock in self._sockets:
            sock.close()

    def _release(self) -> None:
        self.open -= 1
        self._freed.set()
        if self.open < self.cap:
            self._room.set()

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._room.wait()
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:
                await self._accept_failed(exc)
                continue
            self.open += 1
            if self.open >= self.cap:
                self._room.clear()
            try:
                conn.setblocking(False)
                if conn.family in (socket.AF_INET, socket.AF_INET6):
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.connect_accepted_socket(self._protocol, conn)
            except OSError:  # the client left before we got to it
                conn.close()
                self._release()

    async def _accept_failed(self, exc: OSError) -> None:
        """Out of descriptors (something else holds them): wait for a connection to close,
        or a second, rather than spinning; a connection reset before accept is no matter."""
        if exc.errno not in _OUT_OF_DESCRIPTORS:
            return
        logger.warning("cannot accept a connection: {}; waiting for one to close", exc.strerror)
        self._freed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._freed.wait(), _RETRY_ACCEPT_S)
