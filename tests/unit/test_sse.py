"""The shared writer behind ``GET /api/events``: streams fed from one subscription.

Requests and transports are small fakes recording what was written, so each rule is seen in
the bytes: one write per stream per flush, a task's stream fed by its own ``follow`` (its
task only, to its end, nothing lost before it is written), frames held until the stream has
started, a client that stops reading cut off, and every stream ended at shutdown. Every
frame carries its id and every stream opens with ``retry:``; a stream resumed with an id gets
what it missed and then goes on live, or a ``reset`` and the unfinished tasks' snapshots.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import jsonschema
import pytest
from aiohttp import web
from queue_helpers import within

from ai_admin.agent import Agent
from ai_admin.http import openapi, sse
from ai_admin.http.sse import EventStreams
from ai_admin.queue.events import (
    Change,
    EventBus,
    EventKind,
    ObjectEvent,
    Subject,
    Subscription,
    TaskEvent,
)
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
        self.bus = EventBus(first_id=1)  # ids 1, 2, 3, ... in the order of publishing
        self.tasks = {"a": DockerTask(id="a", task_type=TaskType.PULL)}

    def subscribe(self, task_id: str | None = None) -> Subscription:
        return self.bus.subscribe(task_id)

    @property
    def events(self) -> EventBus:
        return self.bus

    async def require_task(self, task_id: str) -> DockerTask:
        return self.tasks[task_id]

    def running_tasks(self) -> list[DockerTask]:
        return [t for t in self.tasks.values() if t.status.is_active]

    def paused_tasks(self) -> list[DockerTask]:
        return [t for t in self.tasks.values() if t.status is TaskStatus.PAUSED]

    def pending_tasks(self) -> list[DockerTask]:
        return [t for t in self.tasks.values() if t.status is TaskStatus.PENDING]


class FakeAgent:
    def __init__(self) -> None:
        self.queue = FakeQueue()


def event(task_id: str, status: str, n: int = 0) -> TaskEvent:
    """A status event, told apart from its twins by its progress ``n``."""
    return TaskEvent(
        EventKind.STATUS, task_id, "docker_pull", TaskStatus(status), n, status, None, 0.0
    )


def frame_of(task_id: str, status: str, n: int = 0, *, id: int) -> bytes:
    """The frame of ``event(task_id, status, n)`` published as the ``id``-th event."""
    data = (
        f'{{"id": {id}, "event": "status", "task_id": "{task_id}", "task_type": "docker_pull", '
        f'"status": "{status}", "progress": {n}, "current_step": "{status}", '
        '"error_code": null, "at": 0.0, "progress_detail": null}'
    )
    return f"id: {id}\nevent: status\ndata: {data}\n\n".encode()


@pytest.fixture
async def streams(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[EventStreams, EventBus]]:
    monkeypatch.setattr(sse, "_FLUSH_S", 0.0)  # write as soon as the pump has the events
    agent = FakeAgent()
    hub = EventStreams(cast(Agent, agent), limit=10)
    app = web.Application()
    await hub.start(app)
    yield hub, agent.queue.bus
    await hub.stop(app)


def opened(
    hub: EventStreams, task_id: str | None = None, after: int | None = None
) -> tuple[Any, FakeTransport]:
    """A started stream whose first write (``retry:`` and anything replayed) is forgotten."""
    transport = FakeTransport()
    stream = hub.open(cast(web.Request, FakeRequest(transport)), task_id, after)
    stream.start(chunked=False)
    assert transport.writes[0].startswith(sse._RETRY)
    transport.writes.clear()
    transport.written.clear()
    return stream, transport


async def test_every_stream_gets_each_flush_in_one_write(
    streams: tuple[EventStreams, EventBus],
) -> None:
    hub, bus = streams
    all_tasks = [opened(hub) for _ in range(3)]
    bus.publish(event("a", "pending"))
    bus.publish(event("b", "running"))
    expected = frame_of("a", "pending", id=1) + frame_of("b", "running", id=2)
    for _, transport in all_tasks:
        assert await transport.next_write() == expected
        assert len(transport.writes) == 1


async def until_written(transport: FakeTransport, data: bytes) -> None:
    while data not in b"".join(transport.writes):
        await transport.next_write()


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
    assert b"".join(transport.writes) == frame_of("a", "running", id=2) + frame_of(
        "a", "failed", id=3
    )


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
    data = sse._RETRY + frame_of("a", "completed", id=1)
    assert transport.writes == [b"%x\r\n%b\r\n" % (len(data), data)]


async def test_a_stream_does_not_get_events_from_before_it_opened(
    streams: tuple[EventStreams, EventBus],
) -> None:
    hub, bus = streams
    _, early = opened(hub)
    bus.publish(event("a", "pending"))  # published, not yet written when the next one opens
    _, late = opened(hub)
    bus.publish(event("a", "running"))
    assert await early.next_write() == frame_of("a", "pending", id=1) + frame_of(
        "a", "running", id=2
    )
    assert await late.next_write() == frame_of("a", "running", id=2)


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


async def test_a_resumed_stream_gets_what_it_missed_then_the_rest_once(
    streams: tuple[EventStreams, EventBus],
) -> None:
    hub, bus = streams
    _, steady = opened(hub)
    for status in ("pending", "running", "pulling"):
        bus.publish(event("a", status))  # ids 1, 2, 3
    transport = FakeTransport()
    stream = hub.open(cast(web.Request, FakeRequest(transport)), None, after=1)
    stream.start(chunked=False)
    transport.written.clear()
    assert transport.writes == [
        sse._RETRY + frame_of("a", "running", id=2) + frame_of("a", "pulling", id=3)
    ]
    bus.publish(event("a", "completed"))  # 4
    assert await transport.next_write() == frame_of("a", "completed", id=4)
    await within(until_written(steady, b"id: 4\n"))
    resumed = b"".join(transport.writes).removeprefix(sse._RETRY)
    assert b"".join(steady.writes).endswith(resumed)  # the same frames, none twice


async def test_a_stream_resumed_beyond_the_buffer_is_reset_to_the_current_state(
    streams: tuple[EventStreams, EventBus],
) -> None:
    hub, bus = streams
    agent = cast(FakeAgent, hub._agent)
    agent.queue.tasks["b"] = DockerTask(id="b", task_type=TaskType.PUSH, status=TaskStatus.FAILED)
    bus.publish(event("a", "pending"))  # 1
    transport = FakeTransport()
    stream = hub.open(cast(web.Request, FakeRequest(transport)), None, after=999)
    stream.start(chunked=False)
    transport.written.clear()
    sent = transport.writes[0].removeprefix(sse._RETRY).decode()
    reset, snapshot = sent.split("\n\n")[:2]
    assert reset == 'id: 1\nevent: reset\ndata: {"event": "reset", "last_event_id": 999}'
    assert snapshot.startswith("id: 1\nevent: snapshot\n")  # "a" only: "b" has finished
    assert '"task_id": "a"' in snapshot
    assert sent.count("event: snapshot") == 1
    bus.publish(event("a", "running"))  # 2: then live
    assert await transport.next_write() == frame_of("a", "running", id=2)


def test_last_event_id_is_read_from_the_header() -> None:
    def request(headers: dict[str, str]) -> web.Request:
        return cast(web.Request, type("R", (), {"headers": headers})())

    assert sse.last_event_id(request({})) is None
    assert sse.last_event_id(request({"Last-Event-ID": " 42 "})) == 42
    assert sse.last_event_id(request({"Last-Event-ID": "yesterday"})) == -1  # a reset


async def test_a_schedule_change_goes_to_the_stream_of_everything_in_order(
    streams: tuple[EventStreams, EventBus],
) -> None:
    """Not to a one-task stream; on the stream of all tasks, between the task events around
    it, numbered with them, its frame and data as the OpenAPI document describes them."""
    hub, bus = streams
    _, everything = opened(hub)
    _, task_stream = opened(hub, "a")
    bus.publish(event("a", "pending"))
    fired = bus.publish(
        ObjectEvent.of(Subject.SCHEDULE, "sch-1", Change.FIRED, task_id="a", status="pending")
    )
    bus.publish(event("a", "running"))
    await until_written(everything, frame_of("a", "running", id=3))
    written = b"".join(everything.writes)
    expected = frame_of("a", "pending", id=1) + sse.frame(fired) + frame_of("a", "running", id=3)
    assert written == expected
    assert sse.frame(fired).startswith(b"id: 2\nevent: schedule_fired\ndata: ")
    assert b"schedule_fired" not in b"".join(task_stream.writes)

    document = openapi.document()
    schema = document["components"]["schemas"]["Event"]
    fields = dict(line.split(": ", 1) for line in sse.frame(fired).decode().strip().splitlines())
    assert fields["event"] in schema["properties"]["event"]["enum"]
    data = json.loads(fields["data"])
    assert data == {
        "id": 2,
        "event": "schedule_fired",
        "subject": "schedule",
        "subject_id": "sch-1",
        "change": "fired",
        "at": fired.at,
        "data": {"task_id": "a", "status": "pending"},
    }
    jsonschema.validate(data, {**schema["properties"]["data"]["contentSchema"], **document})
    jsonschema.validate(
        data, {"$ref": "#/components/schemas/ObjectEvent", "components": document["components"]}
    )


async def test_a_stream_resumed_after_a_schedule_change_gets_it_again(
    streams: tuple[EventStreams, EventBus],
) -> None:
    hub, bus = streams
    bus.publish(event("a", "pending"))
    created = bus.publish(ObjectEvent.of(Subject.SCHEDULE, "sch-1", Change.CREATED, name="n"))
    transport = FakeTransport()
    stream = hub.open(cast(web.Request, FakeRequest(transport)), None, after=1)
    stream.start(chunked=False)
    assert transport.writes[0] == sse._RETRY + sse.frame(created)
