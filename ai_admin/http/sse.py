"""``GET /api/events``: task changes as server-sent events, for all tasks or one.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable

from aiohttp import HttpVersion11, web
from loguru import logger

from ai_admin.agent import Agent
from ai_admin.http.guard import TokenSlots, principal
from ai_admin.queue.events import Subscription, SubscriptionLagged, TaskEvent
from ai_admin.queue.follow import follow

_FLUSH_S = 0.05  # the most often frames are written to every stream
_TEND_S = 1.0  # how often streams whose client has gone are looked for
_KEEPALIVE_TICKS = 15  # a keep-alive comment every 15 tends
_BATCH = 1000  # events taken from the subscription at once
_MAX_UNSENT_BYTES = 4 * 1_048_576
_LAGGED_GRACE_S = 5.0  # for a cut stream's last frame to leave before the socket is dropped
_KEEPALIVE = b": keep-alive\n\n"
_LAGGED = b'event: lagged\ndata: {"event": "lagged"}\n\n'
Numbered = tuple[int, TaskEvent]  # (the event's number in the shared subscription, the event)


def frame(event: TaskEvent) -> bytes:
    """The event as one server-sent-events frame."""
    return f"event: {event.event.value}\ndata: {json.dumps(event.to_dict())}\n\n".encode()


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
        """The headers (and snapshot) are out: send what waited (even if that included the
        task's end), then write as events come."""
        self.chunked = chunked
        held, self.held = self.held or [], None
        if held:
            self._write(b"".join(held), None)

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

    def send_frames(self, events: Iterable[Numbered]) -> None:
        """The frames of ``events`` newer than the stream."""
        frames = [event.encoded(frame) for n, event in events if n > self.since]
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
    """Every open event stream, fed from one subscription to the queue's events."""

    def __init__(self, agent: Agent, limit: int) -> None:
        self.slots = TokenSlots("event streams", "max_event_streams_per_token", limit)
        self._agent = agent
        self._streams: set[_Stream] = set()
        self._subscription: Subscription | None = None
        self._taken = 0  # events taken from the subscription: the last one's number
        self._pending: list[Numbered] = []
        self._last_flush = 0.0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ended = False

    async def start(self, app: web.Application) -> None:
        self._subscription = self._agent.queue.subscribe()
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

    def open(self, request: web.Request, task_id: str | None) -> _Stream:
        """A stream that receives every event from now on (hold frames until ``start``)."""
        delivered = self._subscription.delivered if self._subscription is not None else 0
        stream = _Stream(request, task_id, since=delivered)
        if self._ended:
            stream.end()
        self._streams.add(stream)
        return stream

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
                self._subscription, self._taken = self._agent.queue.subscribe(), 0
                continue
            for event in batch:
                if event is None:  # the queue ended its subscriptions: the agent stops
                    self._flush()
                    self._ended = True
                    self._end_all()
                    return
                self._taken += 1
                self._pending.append((self._taken, event))
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
        first = batch[0][0]
        everything = b"".join(event.encoded(frame) for _, event in batch)
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
    with streams.slots.hold(principal(request)):
        if task_id is not None:
            return await _stream_task(request, agent, streams, task_id)
        stream = streams.open(request, None)  # before the headers go: nothing is missed
        try:
            response, chunked = await _prepare(request)
            # Once the headers are sent, no error envelope can follow: the stream just ends.
            stream.start(chunked)
            await stream.done
            return response
        finally:
            streams.close(stream)


async def _stream_task(
    request: web.Request, agent: Agent, streams: EventStreams, task_id: str
) -> web.StreamResponse:
    async with contextlib.aclosing(follow(agent.queue, task_id)) as events:
        snapshot = await anext(events)  # an unknown task: TaskNotFound, a 404 envelope
        response, chunked = await _prepare(request)
        stream = streams.open(request, task_id)  # tended, and ended when the agent stops
        forwarding: asyncio.Task[None] | None = None
        try:
            stream.start(chunked)
            stream.send(snapshot.encoded(frame))
            if snapshot.finishes:
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
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    chunked = request.version >= HttpVersion11
    if chunked:
        response.enable_chunked_encoding()
    await response.prepare(request)
    return response, chunked
