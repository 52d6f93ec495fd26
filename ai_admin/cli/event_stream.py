"""``GET /api/events`` read as a client: server-sent events, resumed after a dropped
connection.

Each frame's ``id:`` is kept; when the connection drops (the network, a restart of the agent,
a ``lagged`` cut), the stream is opened again after the ``retry:`` delay with
``Last-Event-ID``, and the agent sends what was missed (or a ``reset`` and the current state
as snapshots): nothing is lost. An agent that stays away for ``RECONNECT_LIMIT_S`` ends the
stream with ``CLIENT_AGENT_UNREACHABLE``.

A one-task stream (``task_id``) opens with the task's state and the agent closes it once the
task has finished; the caller stops at the finishing event.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ai_admin.cli.agent_client import AgentClient, unreachable

__all__ = ["FINISHED", "RECONNECT_LIMIT_S", "Frame", "events", "frames"]

FINISHED = frozenset({"completed", "failed", "cancelled", "timeout", "merged"})
RECONNECT_LIMIT_S = 60.0
READ_TIMEOUT_S = 60.0  # the agent writes a keep-alive comment every 15 s
_DEFAULT_RETRY_S = 2.0


@dataclass
class Frame:
    """One dispatched frame: its ``event:``, ``id:`` and ``data:`` (parsed when JSON)."""

    event: str = "message"
    id: str | None = None
    data: Any = None
    retry_ms: int | None = None


def frames(lines: Iterator[bytes]) -> Iterator[Frame]:
    """The frames of an event stream, as the SSE specification dispatches them."""
    current = Frame()
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data or current.retry_ms is not None:
                text = "\n".join(data)
                try:
                    current.data = json.loads(text) if text else None
                except ValueError:
                    current.data = text
                yield current
            current, data = Frame(id=None), []
            continue
        if line.startswith(":"):
            continue  # a keep-alive comment
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            current.event = value
        elif field == "id":
            current.id = value
        elif field == "retry" and value.isdigit():
            current.retry_ms = int(value)


def _lines(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while line := response.readline():
        yield line


@dataclass
class _Resume:
    """What a reconnection needs: the last id seen, the agent's retry delay, since when
    the agent has been away."""

    last_id: str | None = None
    retry_s: float = _DEFAULT_RETRY_S
    away_since: float | None = None


def _open(
    client: AgentClient, path: str, state: _Resume
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse | None]:
    """The stream's connection and response; no response while the agent is away (within
    ``RECONNECT_LIMIT_S`` of a stream already followed), else the failure."""
    headers = client.headers(Accept="text/event-stream")
    if state.last_id is not None:
        headers["Last-Event-ID"] = state.last_id
    conn = client.connection(READ_TIMEOUT_S)
    try:
        conn.request("GET", client.path(path), headers=headers)
        response = conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        state.away_since = state.away_since or time.monotonic()
        if state.last_id is None or time.monotonic() - state.away_since > RECONNECT_LIMIT_S:
            raise unreachable(client.target.url, exc) from None
        return conn, None
    state.away_since = None
    if response.status != 200:
        body = response.read()
        conn.close()
        client.envelope(response.status, body)  # raises the agent's failure
    return conn, response


def _read(response: http.client.HTTPResponse, state: _Resume) -> Iterator[dict[str, Any]]:
    """The events of one connection, until it closes or drops."""
    try:
        for frame in frames(_lines(response)):
            if frame.retry_ms is not None:
                state.retry_s = frame.retry_ms / 1000
            if frame.id is not None:
                state.last_id = frame.id
            if isinstance(frame.data, dict):
                yield frame.data
    except (OSError, http.client.HTTPException):
        return  # dropped: the caller resumes


def events(client: AgentClient, task_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Every event of the stream (one task's, or all tasks'), across reconnections.

    Ends when a one-task stream closes after its task has finished (or closes at once on a
    resume, having nothing left to say); the caller may stop earlier."""
    path = "/api/events" + ("?" + urlencode({"task_id": task_id}) if task_id is not None else "")
    state = _Resume()
    while True:
        conn, response = _open(client, path, state)
        received, finished = 0, False
        try:
            if response is not None:
                for event in _read(response, state):
                    received += 1
                    finished = finished or event.get("status") in FINISHED
                    yield event
        finally:
            conn.close()
        ended = finished or (received == 0 and state.last_id is not None)
        if response is not None and task_id is not None and ended:
            return
        time.sleep(state.retry_s)
