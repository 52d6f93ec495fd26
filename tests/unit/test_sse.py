"""The shared writer behind ``GET /api/events``: streams fed from one subscription.

Requests and transports are small fakes recording what was written, so each rule is seen in
the bytes: one write per stream per flush, a task's stream fed by its own ``follow`` (its
task only, to its end, nothing lost before it is written), frames held until the stream has
started, a client that stops reading cut off, and every stream ended at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import pytest
from aiohttp import web
from queue_helpers import within

from ai_admin.agent import Agent
from ai_admin.http import sse
from ai_admin.http.sse import EventStreams
from ai_admin.queue.events import EventBus, EventKind, Subscription, TaskEvent
from ai_admin.queue.follow import follow
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType


class FakeTransport:
    def __init__(self, unsent_bytes: int = 0) -> None:
        self.writes: list[bytes] = []
        self.unsent_bytes = unsent_bytes
        self.closing = False
        self.written = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.written.set()

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.unsent_bytes

    def close(self) -> None:
        self.closing = True

    async def next_write(self) -> bytes:
        await within(self.written.wait())
        self.written.clear()
        return self.writes[-1]


class FakeRequest:
    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport


class FakeQueue:
    def __init__(self) -> None:
        self.bus = EventBus()
        self.tasks = {"a": DockerTask(id="a", task_type=TaskType.PULL)}

    def subscribe(self, task_id: str | None = None) -> Subscription:
        return self.bus.subscribe(task_id)

    async def require_task(self, task_id: str) -> DockerTask:
        return self.tasks[task_id]


class FakeAgent:
    def __init__(self) -> None:
        self.queue = FakeQueue()


def event(task_id: str, status: str, n: int = 0) -> TaskEvent:
    """A status event, told apart from its twins by its progress ``n``."""
    return TaskEvent(
        EventKind.STATUS, task_id, "docker_pull", TaskStatus(status), n, status, None, 0.0
    )


def frame_of(task_id: str, status: str, n: int = 0) -> bytes:
    data = (
        f'{{"event": "status", "task_id": "{task_id}", "task_type": "docker_pull", '
        f'"status": "{status}", "progress": {n}, "current_step": "{status}", '
        '"error_code": null, "at": 0.0}'
    )
    return f"event: status\ndata: {data}\n\n".encode()


@pytest.fixture
async def streams(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[EventStreams, EventBus]]:
    monkeypatch.setattr(sse, "_FLUSH_S", 0.0)  # write as soon as the pump has the events
    agent = FakeAgent()
    hub = EventStreams(cast(Agent, agent), limit=10)
    app = web.Application()
    await hub.start(app)
    yield hub, agent.queue.bus
    await hub.stop(app)


def opened(hub: EventStreams, task_id: str | None = None) -> tuple[Any, FakeTransport]:
    transport = FakeTransport()
    stream = hub.open(cast(web.Request, FakeRequest(transport)), task_id)
    stream.start(chunked=False)
    return stream, transport


async def test_every_stream_gets_each_flush_in_one_write(
    streams: tuple[EventStreams, EventBus],
) -> None:
    hub, bus = streams
    all_tasks = [opened(hub) for _ in range(3)]
    bus.publish(event("a", "pending"))
    bus.publish(event("b", "running"))
    expected = frame_of("a", "pending") + frame_of("b", "running")
    for _, transport in all_tasks:
        assert await transport.next_write() == expected
        assert len(transport.writes) == 1


def followed(hub: EventStreams, task_id: str) -> AsyncGenerator[TaskEvent, None]:
    return follow(cast(FakeAgent, hub._agent).queue, task_id)


async def test_a_task_stream_gets_its_task_only_and_ends_with_it(
    streams: tuple[EventStreams, EventBus],
) -> None:
    hub, bus = streams
    stream, transport = opened(hub, "a")
    events = followed(hub, "a")
    assert (await within(anext(events))).event is EventKind.SNAPSHOT
    forwarding = asyncio.create_task(sse.forward(events, stream))
    bus.publish(event("b", "running"))
    bus.publish(event("a", "running"))
    bus.publish(event("a", "failed"))
    bus.publish(event("a", "pending", 1))  # a retry after the end: not this stream's business
    await within(stream.done)
    await within(forwarding)
    assert b"".join(transport.writes) == frame_of("a", "running") + frame_of("a", "failed")


async def test_frames_wait_for_the_start_and_are_sent_even_if_the_task_ended(
    streams: tuple[EventStreams, EventBus],
) -> None:
    hub, bus = streams
    transport = FakeTransport()
    stream = hub.open(cast(web.Request, FakeRequest(transport)), "a")
    events = followed(hub, "a")
    await within(anext(events))  # the snapshot, read while the task still waited
    bus.publish(event("a", "completed"))  # before the stream's headers are out
    await within(sse.forward(events, stream))
    await within(stream.done)
    assert transport.writes == []
    stream.start(chunked=True)
    data = frame_of("a", "completed")
    assert transport.writes == [b"%x\r\n%b\r\n" % (len(data), data)]


async def test_a_stream_does_not_get_events_from_before_it_opened(
    streams: tuple[EventStreams, EventBus],
) -> None:
    hub, bus = streams
    _, early = opened(hub)
    bus.publish(event("a", "pending"))  # published, not yet written when the next one opens
    _, late = opened(hub)
    bus.publish(event("a", "running"))
    assert await early.next_write() == frame_of("a", "pending") + frame_of("a", "running")
    assert await late.next_write() == frame_of("a", "running")


async def test_a_client_that_stops_reading_is_cut_off_with_a_lagged_event(
    streams: tuple[EventStreams, EventBus],
) -> None:
    hub, bus = streams
    stream, transport = opened(hub)
    transport.unsent_bytes = sse._MAX_UNSENT_BYTES + 1
    bus.publish(event("a", "pending"))
    assert await transport.next_write() == sse._LAGGED
    assert transport.closing
    await within(stream.done)


async def test_closing_the_queue_subscriptions_ends_every_stream(
    streams: tuple[EventStreams, EventBus],
) -> None:
    hub, bus = streams
    open_streams = [opened(hub)[0], opened(hub, "a")[0]]
    bus.close()  # the agent shutting down
    for stream in open_streams:
        await within(stream.done)
    late = opened(hub)[0]
    assert late.done.done()  # nothing more will come
