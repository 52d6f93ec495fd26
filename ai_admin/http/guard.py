"""Who may reach the agent from where, and how much one token may hold open.

``HostPolicy`` and ``OriginPolicy`` stop DNS rebinding: a page on ``evil.example`` whose name
now resolves to 127.0.0.1 still sends ``Host: evil.example`` and ``Origin:
http://evil.example``, so it is refused before any route runs (``/health`` included: one rule
for every path). ``TokenSlots`` counts long-lived things (event streams, MCP sessions) per token.

The Host rule: the name the agent listens on, ``localhost``, ``127.0.0.1`` and ``[::1]``, with
any port or none, plus ``allowed_hosts`` (an entry with a port allows that port only). An agent
listening on every interface (``0.0.0.0``, ``::``) cannot know the names clients use: with
``allowed_hosts`` empty it accepts any Host and says so once in its log; with names configured,
only those (and the loopback names, and the address itself). An entry that is not a host name
(with an optional port) is left out, and the log says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware
from loguru import logger

from ai_admin.commands.dispatcher import shown_text
from ai_admin.config import Settings
from ai_admin.errors import BadRequest, ErrorCode

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_SHOWN_CHARS = 200  # of a refused header, echoed back to the client


def _name(host: str) -> str:
    """A host name compared the way DNS compares it: case and a final dot do not matter."""
    return host.strip().strip("[]").rstrip(".").lower()


def split_host(header: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a Host header value (``[::1]:8060``, ``Agent.Local``), None if
    it is not one."""
    value = header.strip()
    port: str | None = None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return None
            port = rest[1:]
    elif value.count(":") == 1:
        name, port = value.split(":")
    elif ":" in value:  # an IPv6 address without brackets: no port
        name = value
    else:
        name = value
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        return None
    name = _name(name)
    return (name, int(port) if port is not None else None) if name else None


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(_name(host)).is_unspecified
    except ValueError:
        return False


@dataclass(frozen=True)
class HostPolicy:
    """The Host header values the agent answers to; ``any_host`` when it cannot know them."""

    names: frozenset[tuple[str, int | None]]
    any_host: bool = False
    unusable: tuple[str, ...] = ()  # allowed_hosts entries that name no host

    @classmethod
    def from_settings(cls, settings: Settings) -> HostPolicy:
        parsed = {h: split_host(h) for h in settings.allowed_hosts}
        configured = {p for p in parsed.values() if p is not None}
        own = {(_name(n), None) for n in (*LOOPBACK_NAMES, settings.host)}
        any_host = not configured and _unspecified(settings.host)
        unusable = tuple(h for h, p in parsed.items() if p is None)
        return cls(frozenset(configured | own), any_host, unusable)

    def allows(self, header: str | None) -> bool:
        if self.any_host or header is None:  # no browser leaves Host out
            return True
        parsed = split_host(header)
        if parsed is None:
            return False
        name, port = parsed
        return (name, None) in self.names or (port is not None and parsed in self.names)

    def sdk_patterns(self) -> list[str]:
        """The same names in the MCP SDK's form: exact values, ``name:*`` for any port."""
        patterns: list[str] = []
        for name, port in sorted(self.names, key=lambda n: (n[0], n[1] or 0)):
            shown = f"[{name}]" if ":" in name else name
            patterns += [shown, f"{shown}:*"] if port is None else [f"{shown}:{port}"]
        return patterns


@dataclass(frozen=True)
class OriginPolicy:
    """Browser origins whose pages may call the agent; requests without Origin pass."""

    origins: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> OriginPolicy:
        return cls(frozenset(_origin(o) for o in settings.allowed_origins))

    def allows(self, header: str | None) -> bool:
        return header is None or _origin(header) in self.origins


def _origin(value: str) -> str:
    return value.strip().rstrip("/").lower()


def _refusal(message: str, code: ErrorCode, header: str, value: str | None) -> BadRequest:
    """A refused header, echoed as text any client can read (bounded, escaped)."""
    shown = shown_text(value or "", _SHOWN_CHARS)
    return BadRequest(message.format(shown), code=code, details={header: shown})


def guard_middleware(hosts: HostPolicy, origins: OriginPolicy) -> Middleware:
    """Refuse a foreign Host (400) or browser Origin (403) before auth and routes run."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if not hosts.allows(host):
            raise _refusal(
                "This agent does not answer to the host '{}'.",
                ErrorCode.REQUEST_HOST_NOT_ALLOWED,
                "host",
                host,
            )
        origin = request.headers.get("Origin")
        if not origins.allows(origin):
            raise _refusal(
                "Requests from pages of '{}' are not allowed.",
                ErrorCode.REQUEST_ORIGIN_NOT_ALLOWED,
                "origin",
                origin,
            )
        return await handler(request)

    return guard


def log_host_rule(hosts: HostPolicy, listen: str) -> None:
    for entry in hosts.unusable:
        logger.warning(
            "allowed_hosts: {!r} is not a host name (name or name:port); left out", entry
        )
    if hosts.any_host:
        logger.warning(
            "listening on {} with allowed_hosts empty: the Host header is not checked; "
            "set allowed_hosts to the names clients use to turn the check on",
            listen,
        )


def principal(request: web.Request) -> str:
    """Who holds a stream or session: the bearer token's digest, never the token itself."""
    token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    return hashlib.sha256(token.encode(errors="surrogateescape")).hexdigest()[:32]


class TokenSlots:
    """At most ``limit`` of one kind of long-lived thing per token, freed when each ends."""

    def __init__(self, what: str, setting: str, limit: int) -> None:
        self.what = what
        self.setting = setting
        self.limit = limit
        self._held: dict[str, int] = {}

    def held(self, key: str) -> int:
        return self._held.get(key, 0)

    def check(self, key: str, extra: int = 0) -> None:
        """Raise ``REQUEST_LIMIT_REACHED`` if ``key`` holds the limit (plus ``extra`` more
        counted elsewhere)."""
        if self.held(key) + extra >= self.limit:
            raise BadRequest(
                f"This token already holds {self.limit} open {self.what}, the most allowed.",
                code=ErrorCode.REQUEST_LIMIT_REACHED,
                details={"limit": self.limit, "setting": self.setting},
            )

    @contextlib.contextmanager
    def hold(self, key: str, extra: int = 0) -> Iterator[None]:
        self.check(key, extra)
        self._held[key] = self.held(key) + 1
        try:
            yield
        finally:
            left = self._held[key] - 1
            if left:
                self._held[key] = left
            else:
                del self._held[key]

    def total(self) -> int:
        return sum(self._held.values())
