"""MCP over streamable HTTP at ``/mcp``, inside the agent's aiohttp app, behind its tokens.

The server itself (tools, resources, the prompt) is ``ai_admin.mcp.server``'s; this module is
the aiohttp side only.

The SDK's streamable HTTP transport (``StreamableHTTPSessionManager``) is an ASGI app; each
aiohttp request is handed to it as one ASGI exchange: the scope built from the request, the
body read up front (so the app's body limit answers 413 as on every route), the response
streamed back as the transport writes it (SSE included, which carries progress).

Every request needs a valid bearer token (401 otherwise). The token's access travels in the
scope to the tools: a read-only token may call read-only tools only. An MCP session belongs to
the token that opened it; another token gets 404 for it, as if it did not exist.

A token holds at most ``max_mcp_sessions_per_token`` sessions (and sessionless 2026-07-28
exchanges) at once; one more gets 429 ``REQUEST_LIMIT_REACHED``, and room frees up as sessions
end (DELETE, idle timeout). The SDK's own DNS-rebinding protection is on, with the hosts and
origins the app's guard allows (``ai_admin.http.guard``), which checks them first.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import anyio
from aiohttp import web
from loguru import logger
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from ai_admin.agent import Agent
from ai_admin.commands.dispatcher import error_reply
from ai_admin.errors import AiAdminError, ErrorCode
from ai_admin.http.guard import HostPolicy, OriginPolicy, TokenSlots, principal
from ai_admin.http.routes import ACCESS, read_body, reply_response
from ai_admin.mcp import MCP_METHODS, MCP_PATH
from ai_admin.mcp.server import ACCESS_SCOPE_KEY, build_server

__all__ = ["MCP_PATH", "mount_mcp"]

Scope = MutableMapping[str, Any]  # ASGI's, as the SDK types them
Message = MutableMapping[str, Any]
_DISCONNECT_POLL_S = 1.0
_STOP_WAIT_S = 5.0


def mount_mcp(app: web.Application, agent: Agent) -> None:
    """Serve MCP at ``/mcp`` in ``app``; its sessions start and end with the app.

    The app's auth middleware (``create_app``) decides who may call: the route reads its verdict.

    Once per app: a second call changes nothing.
    """
    if _SERVICE in app:
        return
    settings = agent.settings
    security = transport_security(
        HostPolicy.from_settings(settings), OriginPolicy.from_settings(settings)
    )
    manager = StreamableHTTPSessionManager(build_server(agent), security_settings=security)
    sessions = TokenSlots(
        "MCP sessions", "max_mcp_sessions_per_token", settings.max_mcp_sessions_per_token
    )
    service = _McpService(manager, sessions)
    app[_SERVICE] = service

    async def handle(request: web.Request) -> web.StreamResponse:
        return await service.handle(request, request[ACCESS])

    for method in MCP_METHODS:
        app.router.add_route(method, MCP_PATH, handle)
    app.on_startup.append(service.start)
    # On shutdown, not cleanup: open MCP streams must end before aiohttp waits for handlers.
    app.on_shutdown.append(service.stop)
    app.on_cleanup.append(service.stop)


def transport_security(hosts: HostPolicy, origins: OriginPolicy) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding protection, allowing what the app's guard allows."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=not hosts.any_host,
        allowed_hosts=hosts.sdk_patterns(),
        allowed_origins=sorted(origins.origins),
    )


def _opens_session(request: web.Request) -> bool:
    """A request outside any session: an initialize that opens one, or a sessionless
    exchange of a protocol newer than the handshake ones (the SDK serves those outside every
    session, whatever session id they carry), which counts as a session while it runs."""
    version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER)
    if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
        return True
    return request.method == "POST" and MCP_SESSION_ID_HEADER not in request.headers


class _McpService:
    """The session manager, run in a task of its own for as long as the app runs.

    Its ``run()`` holds an anyio task group, which must be entered and left in one task;
    aiohttp's start-up and clean-up hooks may run in different ones.
    """

    def __init__(self, manager: StreamableHTTPSessionManager, sessions: TokenSlots) -> None:
        self.manager = manager
        self.sessions = sessions  # requests that open a session, while they run
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._jobs: set[asyncio.Task[None]] = set()

    async def start(self, app: web.Application) -> None:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._run(ready), name="mcp-sessions")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()  # raises what stopped it

    async def _run(self, ready: asyncio.Event) -> None:
        async with self.manager.run():
            ready.set()
            await self._stop.wait()

    async def stop(self, app: web.Application) -> None:
        """End every session, then every exchange still open (a 2026-07-28 request runs in
        its own exchange, outside the sessions), so aiohttp need not wait for them."""
        self._stop.set()
        if self._task is not None:
            await self._task
        for job in self._jobs:
            job.cancel()
        if self._jobs:
            await asyncio.wait(self._jobs, timeout=_STOP_WAIT_S)

    def open_sessions(self, client_id: str) -> int:
        """Sessions the SDK keeps open for ``client_id``.

        The SDK has no public count; ``_session_owners`` (session id -> who opened it) is
        read here only, and ``test_mcp_http`` fails if it goes away."""
        owners: dict[str, Any] = self.manager._session_owners
        return sum(1 for owner in owners.values() if owner.get("client_id") == client_id)

    async def handle(self, request: web.Request, access: str) -> web.StreamResponse:
        if not _opens_session(request):
            return await self._handle(request, access)
        key = principal(request)
        with self.sessions.hold(key, self.open_sessions(_client_id(access, key))):
            return await self._handle(request, access)

    async def _handle(self, request: web.Request, access: str) -> web.StreamResponse:
        exchange = _Exchange(request, await read_body(request))
        # An ASGI app is never cancelled by its server (it hears http.disconnect instead), and
        # the SDK relies on that: a cancelled opening request discards its new session. So the
        # exchange runs in a task of its own that a cancelled aiohttp handler leaves running.
        job = asyncio.create_task(self._serve(request, access, exchange))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            exchange.finish()  # the client has gone: receive() now says so
            raise
        if exchange.response is None:
            error = AiAdminError("The MCP transport gave no answer.", code=ErrorCode.INTERNAL_ERROR)
            return reply_response(error_reply(error))
        return exchange.response

    async def _serve(self, request: web.Request, access: str, exchange: _Exchange) -> None:
        try:
            scope = _scope(request, access)
            await self.manager.handle_request(scope, exchange.receive, exchange.send)
        except Exception as exc:
            if not _is_disconnect(exc):
                logger.opt(exception=exc).error("MCP request {} failed", request.method)
        finally:
            exchange.finish()


_SERVICE = web.AppKey("ai_admin.mcp", _McpService)


def _client_id(access: str, key: str) -> str:
    return f"{access}:{key}"


def _scope(request: web.Request, access: str) -> Scope:
    # The principal that owns a session: the token's digest, never the token itself.
    key = principal(request)
    peer = request.transport.get_extra_info("peername") if request.transport else None
    host, _, port = request.host.rpartition(":")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.partition("?")[0].encode(),
        "root_path": "",
        "query_string": request.query_string.encode(),
        "headers": [_header(k, v) for k, v in request.raw_headers],
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": (host, int(port)) if port.isdigit() else (request.host, None),
        "user": AuthenticatedUser(
            AccessToken(token=key, client_id=_client_id(access, key), scopes=[access])
        ),
        ACCESS_SCOPE_KEY: access,
    }


def _header(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """ASGI's lower-case names; Host in the canonical form the app's guard has accepted
    (DNS names are case-insensitive, the SDK's Host check compares exactly)."""
    name = name.lower()
    return (name, value.lower().rstrip(b".")) if name == b"host" else (name, value)


class _Exchange:
    """One request's ASGI ``receive`` and ``send`` over aiohttp."""

    def __init__(self, request: web.Request, body: bytes) -> None:
        self._request = request
        self._body: bytes | None = body
        self._done = anyio.Event()
        self.response: web.StreamResponse | None = None

    async def receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        # anyio, not asyncio.wait_for: the SDK cancels this through anyio cancel scopes.
        while not self._done.is_set() and not self._client_gone():
            with anyio.move_on_after(_DISCONNECT_POLL_S):
                await self._done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            response = web.StreamResponse(status=message["status"])
            for name, value in message.get("headers", []):
                response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
            self.response = response
        elif message["type"] == "http.response.body" and self.response is not None:
            if not self.response.prepared:
                await self.response.prepare(self._request)
            body = message.get("body", b"")
            if body:
                await self.response.write(body)
            if not message.get("more_body", False):
                await self.response.write_eof()
                self._done.set()

    def finish(self) -> None:
        self._done.set()

    def _client_gone(self) -> bool:
        transport = self._request.transport
        return transport is None or transport.is_closing()


def _is_disconnect(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_disconnect(e) for e in exc.exceptions)
    return isinstance(exc, ConnectionError)
