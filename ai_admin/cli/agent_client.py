"""Requests to a running agent, on the standard library's ``http.client``.

Every command goes to ``POST /cmd`` as ``{"action", "params"}`` and comes back as the agent's
envelope: ``data`` on success, and on failure a ``CliFailure`` with the agent's code, message
and suggestions and the exit status of its class. No agent at the URL, or an answer that is
no envelope, is a failure of its own (``CLIENT_AGENT_UNREACHABLE``, ``CLIENT_BAD_ANSWER``).

The standard library rather than aiohttp: a client command must start fast, and one
request needs no event loop. Proxies from the environment are never used: the agent is
addressed directly, as ``ai-admin health`` does.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from ai_admin.cli.exits import CliFailure, ExitCode, exit_code_for
from ai_admin.cli.target import NO_TOKEN, TOKEN_ENV, Target

__all__ = ["REQUEST_TIMEOUT_S", "AgentClient", "unreachable"]

REQUEST_TIMEOUT_S = 60.0


def unreachable(url: str, reason: object) -> CliFailure:
    return CliFailure(
        "CLIENT_AGENT_UNREACHABLE",
        f"No agent answers at {url}: {reason}.",
        ExitCode.UNREACHABLE,
        [
            "Start the agent (`ai-admin serve`), or check that it runs.",
            "Check the address: --url, or host and port in the agent's configuration.",
        ],
        {"url": url},
    )


def _bad_answer(url: str, status: int, why: str) -> CliFailure:
    return CliFailure(
        "CLIENT_BAD_ANSWER",
        f"{url} answered HTTP {status} with {why}, not an ai-admin envelope.",
        ExitCode.AGENT_ERROR,
        ["Check that --url names an ai-admin agent (`ai-admin health`)."],
        {"url": url, "http_status": status},
    )


class AgentClient:
    """One agent's HTTP API; a connection is opened per request (a command makes one or two)."""

    def __init__(self, target: Target, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.target = target
        self.timeout_s = timeout_s
        parts = urlsplit(target.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliFailure(
                "CLIENT_BAD_URL",
                f"{target.url!r} is not an http:// or https:// URL.",
                ExitCode.USAGE,
                ["Give the agent's address as --url http://HOST:PORT."],
            )
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base_path = parts.path.rstrip("/")

    def connection(self, timeout_s: float | None = None) -> http.client.HTTPConnection:
        timeout = self.timeout_s if timeout_s is None else timeout_s
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {"Accept": "application/json", **extra}
        if self.target.token:
            headers["Authorization"] = f"Bearer {self.target.token}"
        return headers

    def path(self, path: str) -> str:
        return self._base_path + path

    def command(self, action: str, params: dict[str, Any] | None = None) -> Any:
        """Run one command; its ``data``, or a ``CliFailure`` from the agent's error."""
        return self.send({"action": action, "params": params or {}})

    def send(self, message: Any) -> Any:
        """Send a whole command message as it is; the answer's ``data``."""
        envelope = self.request("POST", "/cmd", message)
        return envelope.get("data")

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """One request; the successful envelope, else the failure it describes."""
        payload = None if body is None else json.dumps(body).encode()
        headers = self.headers()
        if payload is not None:
            headers["Content-Type"] = "application/json"
        conn = self.connection()
        try:
            conn.request(method, self.path(path), body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise unreachable(self.target.url, _reason(exc)) from None
        finally:
            conn.close()
        return self.envelope(response.status, raw)

    def envelope(self, status: int, raw: bytes) -> dict[str, Any]:
        try:
            envelope = json.loads(raw)
        except ValueError:
            raise _bad_answer(self.target.url, status, "a body that is no JSON") from None
        if not isinstance(envelope, dict) or "success" not in envelope:
            raise _bad_answer(self.target.url, status, "JSON without success")
        if envelope["success"] is True:
            return envelope
        raise self.failure(status, envelope.get("error"))

    def failure(self, status: int, error: Any) -> CliFailure:
        """The failure an error object of the agent describes."""
        if not isinstance(error, dict):
            return _bad_answer(self.target.url, status, "a failure without an error object")
        code = str(error.get("code", "UNKNOWN_ERROR"))
        suggestions = [str(s) for s in error.get("suggestions") or []]
        exit_code = exit_code_for(status, code)
        if exit_code is ExitCode.AUTH and self.target.token_from == NO_TOKEN:
            suggestions.append(
                f"No token was found: give --token, set {TOKEN_ENV}, or run the client as the "
                "user whose data directory holds the agent's token file."
            )
        details = error.get("details")
        return CliFailure(
            code,
            str(error.get("message", "")),
            exit_code,
            suggestions,
            details if isinstance(details, dict) else {},
        )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text)
