"""``GET /api/events``: task changes as server-sent events, for all tasks or one.

For one task the stream opens with its current state and ends once it has finished, so a
client can simply read until the stream closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from ai_admin.agent import Agent
from ai_admin.queue.events import Subscription, SubscriptionLagged
from ai_admin.queue.models import TaskStatus

_KEEPALIVE_S = 15.0


def _frame(event: dict[str, Any]) -> bytes:
    return f"event: {event['event']}\ndata: {json.dumps(event)}\n\n".encode()


async def stream_events(
    request: web.Request, agent: Agent, task_id: str | None
) -> web.StreamResponse:
    queue = agent.queue
    subscription = queue.subscribe(task_id)  # before reading the state: nothing is missed
    try:
        task = await queue.require_task(task_id) if task_id is not None else None
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        # Once the headers are sent, no error envelope can follow: the stream just ends.
        with contextlib.suppress(ConnectionResetError):  # the client went away
            await _forward(response, subscription, queue.event_of(task) if task else None)
        return response
    finally:
        subscription.close()


async def _forward(
    response: web.StreamResponse, subscription: Subscription, snapshot: dict[str, Any] | None
) -> None:
    if snapshot is not None:
        await response.write(_frame(snapshot))
        if TaskStatus(snapshot["status"]).is_finished:
            return
    while True:
        try:
            event = await asyncio.wait_for(subscription.next(), _KEEPALIVE_S)
        except TimeoutError:
            await response.write(b": keep-alive\n\n")
            continue
        except SubscriptionLagged:
            await response.write(b'event: lagged\ndata: {"event": "lagged"}\n\n')
            return
        if event is None:
            return
        await response.write(_frame(event))
        if subscription.task_id is not None and TaskStatus(event["status"]).is_finished:
            return
