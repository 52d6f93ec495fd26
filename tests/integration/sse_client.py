"""A client of the agent's server-sent events (``GET /api/events``) for the integration tests:
frames read as the agent writes them, with the id a client sends back as Last-Event-ID."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from http_client import WAIT_S, Api


class EventStream:
    """``GET /api/events``, read frame by frame as the agent writes them."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.raw: list[str] = []
        self.last_id: str | None = None  # what a client sends back as Last-Event-ID
        self.retry_ms: int | None = None

    async def next(self, timeout_s: float = WAIT_S) -> dict[str, Any] | None:
        """The next event, or None when the agent has closed the stream."""
        kind, data, frame_id = None, None, None
        async with asyncio.timeout(timeout_s):
            while True:
                line_bytes = await self.response.content.readline()
                if not line_bytes:
                    return None
                line = line_bytes.decode()
                self.raw.append(line)
                line = line.rstrip("\n")
                if line.startswith(":"):
                    continue  # keep-alive comment
                if line.startswith("id: "):
                    self.last_id = frame_id = line.removeprefix("id: ")
                elif line.startswith("retry: "):
                    self.retry_ms = int(line.removeprefix("retry: "))
                elif line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                elif line == "" and data is not None:
                    assert data["event"] == kind, (kind, data)
                    if "id" in data:  # an event's id: is its own (reset frames carry none)
                        assert frame_id == str(data["id"]), (frame_id, data)
                    return dict(data)

    async def until_closed(self, timeout_s: float = WAIT_S) -> list[dict[str, Any]]:
        events = []
        deadline = time.monotonic() + timeout_s
        while (event := await self.next(max(0.1, deadline - time.monotonic()))) is not None:
            events.append(event)
        return events

    async def until(self, predicate: Any, timeout_s: float = WAIT_S) -> list[dict[str, Any]]:
        """The events up to and including the first that satisfies ``predicate``."""
        events = []
        while True:
            event = await self.next(timeout_s)
            assert event is not None, f"the stream ended after {events[-3:]}"
            events.append(event)
            if predicate(event):
                return events


async def open_events(api: Api, query: str = "", last_event_id: str | None = None) -> EventStream:
    headers = {"Authorization": f"Bearer {api.token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    response = await api.session.get(
        f"{api.url}/api/events{query}",
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=None, sock_read=WAIT_S),
    )
    assert response.status == 200, await response.text()
    assert response.content_type == "text/event-stream"
    return EventStream(response)
