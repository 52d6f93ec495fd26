"""``GET /api/events``: task changes as server-sent events, for all tasks or one.

The stream of all tasks carries the changes of things that are not tasks too (a schedule
created, fired, paused, resumed or deleted: ``ObjectEvent``), in the same order and numbering;
a one-task stream carries its task's events only.

For one task the stream opens with its current state and ends once it has finished, so a
client can simply read until the stream closes: it is ``ai_admin.queue.follow`` written out as
frames. A token may hold ``max_event_streams_per_token`` streams at once; one more gets 429
``REQUEST_LIMIT_REACHED``.

A thousand open streams of all tasks must not slow the queue down, so they have no task or
queue of their own. ``EventStreams`` holds one subscription for all of them; each event is
encoded once (``TaskEvent.encoded``), and the frames that arrived since the last write go to
every stream in one direct transport write per stream, at most every ``_FLUSH_S`` (at once
when the agent is quiet). A stream's handler just waits for its end. A stream of one task
(which ends with it) gets its frames from its own ``follow``; the hub tends it like the
others. A client that stops reading is cut off once ``_MAX_UNSENT_BYTES`` wait for it (a
``lagged`` event, then the connection closes); one that has gone is noticed within
``_TEND_S``, which frees its slot.

Resuming. Every event goes out with its ``id:`` (``TaskEvent.id``, numbered by the queue's event
bus), and every stream opens with ``retry:`` (``RETRY_MS``). A client that reconnects with
``Last-Event-ID`` first gets the events after that id that it missed (of its task only, on a
one-task stream), from the bus's replay buffer (the last ``REPLAY_EVENTS`` events of the agent),
then the stream goes on live: nothing lost, nothing twice. If the buffer no longer holds them
(the id is too old, from before the agent restarted, or not an id at all), the stream says so
with a ``reset`` event, then sends the current state as ``snapshot`` events (the task's, or
every unfinished task's on the stream of all tasks: finished ones are in ``/api/tasks``), each
carrying the id to resume after next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace

from aiohttp import HttpVersion11, web
from loguru import logger

from ai_admin.agent import Agent
from ai_admin.http.guard import TokenSlots, principal
from ai_admin.queue.events import Event, EventKind, SubscriptionLagged, TaskEvent, Watch
from ai_admin.queue.follow import follow

_FLUSH_S = 0.05  # the most often frames are written to every stream
_TEND_S = 1.0  # how often streams whose client has gone are looked for
_KEEPALIVE_TICKS = 15  # a keep-alive comment every 15 tends
_BATCH = 1000  # events taken from the subscription at once
_MAX_UNSENT_BYTES = 4 * 1_048_576
_LAGGED_GRACE_S = 5.0  # for a cut stream's last frame to leave before the socket is dropped
_KEEPALIVE = b": keep-alive\n\n"
_LAGGED = b'event: lagged\ndata: {"event": "lagged"}\n\n'
RETRY_MS = 2_000  # how long a client waits before reconnecting (the ``retry:`` field)
_RETRY = b"retry: %d\n\n" % RETRY_MS
LAST_EVENT_ID = "Last-Event-ID"
_NOT_AN_ID = -1  # a Last-Event-ID that is no id: never in the replay buffer, so a reset


def frame(event: Event) -> bytes:
    """The event as one server-sent-events frame, with its id when it has one."""
    head = f"id: {event.id}\n" if event.id is not None else ""
    return f"{head}event: {event.name}\ndata: {json.dumps(event.to_dict())}\n\n".encode()


def reset_frame(last_event_id: int, resume_id: int) -> bytes:
    """The ``reset`` event: the events after ``last_event_id`` are no longer kept; the current
    state follows as snapshots. Its id is the one to resume after."""
    data = json.dumps({"event": "reset", "last_event_id": last_event_id})
    return f"id: {resume_id}\nevent: reset\ndata: {data}\n\n".encode()


def last_event_id(request: web.Request) -> int | None:
    """The id a reconnecting client saw last; ``_NOT_AN_ID`` if it sent something else."""
    value = request.headers.get(LAST_EVENT_ID)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return _NOT_AN_ID


def _id(event: Event) -> int:
    """A published event's id (the bus numbers every event it hands out)."""
    assert event.id is not None
    return event.id


def _chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk, as aiohttp frames what it writes itself."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class _Stream:
    """One open stream, written to directly; ``done`` resolves when it is over."""

    def __init__(self, request: web.Request, task_id: str | None, since: int) -> None:
        self.request = request
        self.task_id = task_id
        self.since = since  # events numbered up to this one came before the stream
        self.chunked = False
        self.held: list[bytes] | None = []  # frames that came before the snapshot went out
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self, chunked: bool) -> None:
        """The headers are out: send ``retry:`` and what waited (even if that included the
        task's end), then write as events come."""
        self.chunked = chunked
        held, self.held = self.held or [], None
        self._write(b"".join([_RETRY, *held]), None)

    def send(self, data: bytes, chunked_data: bytes | None = None) -> None:
        """Write ``data`` (``chunked_data``: the same, framed as a chunk, if already made)."""
        if self.done.done():
            return
        if self.held is not None:
            self.held.append(data)
        else:
            self._write(data, chunked_data)

    def _write(self, data: bytes, chunked_data: bytes | None) -> None:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            self.end()
        elif transport.get_write_buffer_size() > _MAX_UNSENT_BYTES:
            transport.write(self._framed(_LAGGED))
            transport.close()  # waits for the buffer to drain, which a stalled client never does
            asyncio.get_running_loop().call_later(_LAGGED_GRACE_S, transport.abort)
            self.end()
        else:
            transport.write(chunked_data if self.chunked and chunked_data else self._framed(data))

    def send_frames(self, events: Iterable[Event], after: int | None = None) -> None:
        """The frames of ``events`` after id ``after`` (by default, those newer than the
        stream; a resumed stream's replay gives the last id its client saw)."""
        after = self.since if after is None else after
        frames = [event.encoded(frame) for event in events if _id(event) > after]
        if frames:
            self.send(b"".join(frames))

    def gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    def end(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def _framed(self, data: bytes) -> bytes:
        return _chunk(data) if self.chunked else data


class EventStreams:
    """Every open event stream, fed from one watch of the queue's events (tasks' and
    others')."""

    def __init__(self, agent: Agent, limit: int) -> None:
        self.slots = TokenSlots("event streams", "max_event_streams_per_token", limit)
        self._agent = agent
        self._streams: set[_Stream] = set()
        self._subscription: Watch | None = None
        self._pending: list[Event] = []
        self._last_flush = 0.0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ended = False

    async def start(self, app: web.Application) -> None:
        self._subscription = self._agent.queue.events.watch()
        self._tasks = [
            asyncio.create_task(self._pump(), name="event-streams"),
            asyncio.create_task(self._tend(), name="event-streams-tend"),
        ]

    async def stop(self, app: web.Application) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._end_all()
        if self._subscription is not None:
            self._subscription.close()

    def open(self, request: web.Request, task_id: str | None, after: int | None = None) -> _Stream:
        """A stream that receives every event from now on (hold frames until ``start``).

        ``after`` (a stream of all tasks resumed with Last-Event-ID): first the events after
        it, or a ``reset`` and the unfinished tasks' snapshots if they are no longer kept."""
        subscription = self._subscription
        latest = subscription.latest_id if subscription is not None else 0
        stream = _Stream(request, task_id, since=latest)
        if self._ended:
            stream.end()
        elif after is not None and subscription is not None:
            missed = subscription.backlog(after, until=latest)
            if missed is not None:
                stream.send_frames(missed, after)
            else:
                stream.send(reset_frame(after, latest) + self._snapshots(latest))
        self._streams.add(stream)
        return stream

    def _snapshots(self, latest: int) -> bytes:
        """Every unfinished task's state, as of event ``latest``, as snapshot frames."""
        queue = self._agent.queue
        tasks = [*queue.running_tasks(), *queue.paused_tasks(), *queue.pending_tasks()]
        return b"".join(
            frame(replace(TaskEvent.of(task, EventKind.SNAPSHOT), id=latest)) for task in tasks
        )

    def close(self, stream: _Stream) -> None:
        stream.end()
        self._streams.discard(stream)

    async def _pump(self) -> None:
        """Take events off the shared subscription; frames go out in ``_flush``."""
        while self._subscription is not None:
            subscription = self._subscription
            try:
                event = await subscription.next()
                batch = [event, *subscription.ready(_BATCH)] if event is not None else [None]
            except SubscriptionLagged:
                logger.warning("event streams fell behind the queue; open streams are ended")
                self._lagged_all()
                self._subscription = self._agent.queue.events.watch()
                continue
            for event in batch:
                if event is None:  # the queue ended its subscriptions: the agent stops
                    self._flush()
                    self._ended = True
                    self._end_all()
                    return
                self._pending.append(event)
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        loop = asyncio.get_running_loop()
        wait_s = self._last_flush + _FLUSH_S - loop.time()
        if wait_s <= 0:
            self._flush()
        else:
            self._flush_handle = loop.call_later(wait_s, self._flush)

    def _flush(self) -> None:
        """Write the pending events to every stream: encoded once, one write per stream."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush_handle = None
        self._last_flush = asyncio.get_running_loop().time()
        batch, self._pending = self._pending, []
        if not batch or not self._streams:
            return
        first = _id(batch[0])
        everything = b"".join(event.encoded(frame) for event in batch)
        chunked = _chunk(everything)
        for stream in list(self._streams):
            if stream.task_id is not None:
                continue  # fed by its own follow (forward)
            if stream.since < first:
                stream.send(everything, chunked)
            else:
                stream.send_frames(batch)

    async def _tend(self) -> None:
        """End streams whose client has gone; keep quiet ones open with a comment."""
        ticks = 0
        while True:
            await asyncio.sleep(_TEND_S)
            ticks += 1
            for stream in list(self._streams):
                if stream.gone():
                    stream.end()
                elif ticks % _KEEPALIVE_TICKS == 0:
                    stream.send(_KEEPALIVE)

    def _end_all(self) -> None:
        for stream in list(self._streams):
            stream.end()

    def _lagged_all(self) -> None:
        self._pending.clear()
        for stream in list(self._streams):
            stream.send(_LAGGED)
            stream.end()


async def stream_events(
    request: web.Request, agent: Agent, streams: EventStreams, task_id: str | None
) -> web.StreamResponse:
    after = last_event_id(request)
    with streams.slots.hold(principal(request)):
        if task_id is not None:
            return await _stream_task(request, agent, streams, task_id, after)
        stream = streams.open(request, None, after)  # before the headers go: nothing is missed
        try:
            response, chunked = await _prepare(request)
            # Once the headers are sent, no error envelope can follow: the stream just ends.
            stream.start(chunked)
            await stream.done
            return response
        finally:
            streams.close(stream)


async def _stream_task(
    request: web.Request, agent: Agent, streams: EventStreams, task_id: str, after: int | None
) -> web.StreamResponse:
    async with contextlib.aclosing(follow(agent.queue, task_id, after)) as events:
        # The snapshot, or the first event missed (an unknown task: TaskNotFound, a 404
        # envelope); nothing if a resuming client had already seen the task end.
        first = await anext(events, None)
        response, chunked = await _prepare(request)
        stream = streams.open(request, task_id)  # tended, and ended when the agent stops
        forwarding: asyncio.Task[None] | None = None
        try:
            stream.start(chunked)
            if first is not None and after is not None and first.event is EventKind.SNAPSHOT:
                stream.send(reset_frame(after, _id(first)))  # too much missed: start over
            if first is not None:
                stream.send(first.encoded(frame))
            if first is None or first.finishes:
                stream.end()
            else:
                forwarding = asyncio.create_task(forward(events, stream))
            await stream.done
        finally:
            streams.close(stream)
            if forwarding is not None:
                forwarding.cancel()
                await asyncio.gather(forwarding, return_exceptions=True)
        return response


async def forward(events: AsyncIterator[TaskEvent], stream: _Stream) -> None:
    """Write a followed task's events to its stream, then end it (cut off with a ``lagged``
    event if the stream fell too far behind the queue)."""
    try:
        async for event in events:
            stream.send(event.encoded(frame))
    except SubscriptionLagged:
        stream.send(_LAGGED)
    stream.end()


async def _prepare(request: web.Request) -> tuple[web.StreamResponse, bool]:
    """The stream's headers, sent; whether its body is chunked."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # a reverse proxy (nginx) passes each event on at once
        }
    )
    chunked = request.version >= HttpVersion11
    if chunked:
        response.enable_chunked_encoding()
    await response.prepare(request)
    return response, chunked
