"""The agent's listening sockets, with a cap on the connections it serves at once.

Every open connection costs a file descriptor. Left alone, an agent whose limit is 256 that
is handed 300 idle connections has no descriptor left for its database, the Docker client or
its log, and ``/health`` fails with it. So the agent accepts connections itself, one at a
time, while fewer than ``cap`` are open; further ones wait in the kernel's listen backlog
(costing the process nothing) until one closes. The cap is ``max_connections``, kept
``FD_RESERVE`` below the process's descriptor limit. Room comes back because no connection
can hold on for long without doing its part: one that sends its request head too slowly is
closed by the request-head timeout (``request_head_timeout_s``, aiohttp's
``keepalive_timeout``, which also bounds the wait for a connection's first request), and one
whose client stops reading its answers is aborted once they have not moved for as long.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

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


class _Handler(web.RequestHandler):
    """aiohttp's request handler, told when its connection ends, and quiet about what it refused.

    aiohttp answers a request its parser refuses with a text quoting the refused header line,
    which may hold a token; this one answers with the agent's envelope and quotes nothing."""

    __slots__ = ("_on_lost",)

    def __init__(self, server: web.Server, on_lost: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(server, loop=asyncio.get_running_loop(), **kwargs)
        self._on_lost = on_lost

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self._on_lost()

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
    """Accepts connections for an aiohttp server while fewer than ``cap`` are open, and closes
    those whose client stopped reading what it asked for."""

    def __init__(
        self, server: web.Server, cap: int, handler_args: Mapping[str, Any], stall_s: float
    ) -> None:
        self.cap = cap
        self.open = 0
        self._server = server
        self._handler_args = dict(handler_args)  # those the runner gave the server
        self._stall_s = stall_s
        self._stalled: dict[asyncio.Transport, tuple[int, float]] = {}
        self._room = asyncio.Event()
        self._room.set()
        self._freed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sockets: list[socket.socket] = []

    def _handler(self) -> web.RequestHandler:
        return _Handler(self._server, self._release, **self._handler_args)

    def serve(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            self._sockets.append(sock)
            self._tasks.append(asyncio.create_task(self._accept(sock), name="ai-admin-accept"))
        self._tasks.append(asyncio.create_task(self._sweep(), name="ai-admin-stalled"))

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
                await loop.connect_accepted_socket(self._handler, conn)
            except OSError:  # the client left before we got to it
                conn.close()
                self._release()

    async def _sweep(self) -> None:
        """Abort connections whose unsent answer has not shrunk for ``stall_s``.

        The head timeout only runs while a connection waits for a request: a client that sends
        requests and never reads the answers would hold its connection (and the answers' memory)
        for ever. A client that reads, however slowly, shrinks its buffer and is left alone."""
        while True:
            await asyncio.sleep(min(1.0, self._stall_s / 4))
            now = time.monotonic()
            stalled: dict[asyncio.Transport, tuple[int, float]] = {}
            for handler in self._server.connections:
                transport = handler.transport  # uvloop's is no asyncio.Transport subclass
                if transport is None or transport.is_closing():
                    continue
                unsent = transport.get_write_buffer_size()
                if not unsent:
                    continue
                before, since = self._stalled.get(transport, (unsent + 1, now))
                since = now if unsent < before else since
                if now - since >= self._stall_s:
                    logger.info("closing a connection whose client stopped reading")
                    transport.abort()
                else:
                    stalled[transport] = (unsent, since)
            self._stalled = stalled

    async def _accept_failed(self, exc: OSError) -> None:
        """Out of descriptors (something else holds them): wait for a connection to close,
        or a second, rather than spinning; a connection reset before accept is no matter."""
        if exc.errno not in _OUT_OF_DESCRIPTORS:
            return
        logger.warning("cannot accept a connection: {}; waiting for one to close", exc.strerror)
        self._freed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._freed.wait(), _RETRY_ACCEPT_S)
