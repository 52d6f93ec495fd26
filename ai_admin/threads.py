"""Blocking work off the event loop, on named daemon threads that hand their results back.

Two shapes, one mechanism (a thread settles a future through ``call_soon_threadsafe``):

- ``in_thread(fn, name)``: one call on a thread of its own (a Docker SDK call, a stream pump);
- ``JobThread``: a thread that owns one resource (a database connection) and serves the jobs
  queued for it, those waiting together as one batch, until it is stopped; ``stop()`` returns
  once the thread has closed its resource.

Daemon threads, so a call stuck in a blocking read never keeps the process from exiting. A
result that arrives after its caller gave up (a cancelled future) is dropped.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from loguru import logger

T = TypeVar("T")
R = TypeVar("R")  # the resource a JobThread owns
J = TypeVar("J")  # a job it serves
MAX_BATCH = 2_000
Settled = tuple[asyncio.Future[Any], bool, Any]  # (future, succeeded, result or exception)
Call = tuple[Callable[[Any], Any], asyncio.Future[Any]]  # a job of JobThread.call


def settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    """Give ``fut`` its result (``ok``) or exception, unless its caller gave up on it."""
    if fut.done():  # the caller was cancelled; the work itself still happened
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


def settle_all(settled: Iterable[Settled]) -> None:
    for fut, ok, value in settled:
        settle(fut, ok, value)


def hand_back(settled: list[Settled]) -> None:
    """From a thread: settle these futures on their loop, in one wake-up."""
    if settled:
        settled[0][0].get_loop().call_soon_threadsafe(settle_all, settled)


def _spawn(fn: Callable[[], T], name: str) -> tuple[threading.Thread, asyncio.Future[T]]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def target() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the loop, whose caller decides
            loop.call_soon_threadsafe(settle, fut, False, exc)
        else:
            loop.call_soon_threadsafe(settle, fut, True, result)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread, fut


def in_thread(fn: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run ``fn`` on a new daemon thread named ``name``; await its result on the loop."""
    return _spawn(fn, name)[1]


def run_calls(resource: Any, batch: list[Call]) -> None:
    """Run each job of ``JobThread.call`` in turn; hand every result back in one wake-up."""
    settled: list[Settled] = []
    for fn, fut in batch:
        try:
            settled.append((fut, True, fn(resource)))
        except Exception as exc:
            settled.append((fut, False, exc))
    hand_back(settled)


class JobThread(Generic[R, J]):
    """A named daemon thread owning the resource ``open_resource`` makes, running
    ``run(resource, batch)`` for each batch of the jobs ``put`` for it (every job already
    waiting, in order, up to ``MAX_BATCH``), and closing the resource once stopped.

    ``run`` hands its results back itself (``hand_back``), or use ``call`` with ``run_calls``.
    """

    def __init__(
        self,
        name: str,
        open_resource: Callable[[], R],
        run: Callable[[R, list[J]], None],
        close_resource: Callable[[R], object],
    ) -> None:
        self.name = name
        self._open = open_resource
        self._run = run
        self._close = close_resource
        self._jobs: queue.SimpleQueue[J | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ended: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Start the thread; returns once ``open`` succeeded there, or raises what it raised."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def serve() -> None:
            try:
                resource = self._open()
            except Exception as exc:  # reported to start()'s caller
                hand_back([(ready, False, exc)])
                return
            hand_back([(ready, True, None)])
            try:
                while (batch := self._drain()) is not None:
                    self._run(resource, batch)
            finally:
                self._close(resource)

        self._thread, self._ended = _spawn(serve, self.name)
        self._ended.add_done_callback(self._log_failure)
        await ready

    def put(self, job: J) -> None:
        self._jobs.put(job)

    def call(self: JobThread[R, Call], fn: Callable[[R], T]) -> asyncio.Future[T]:
        """Run ``fn(resource)`` on the thread, after the jobs queued before it."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((fn, fut))
        return fut

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def stop(self) -> None:
        """Let the thread finish the jobs already queued, close its resource and end."""
        ended, self._ended = self._ended, None
        if ended is None:
            return
        self._jobs.put(None)
        await asyncio.wait([ended])

    def _log_failure(self, ended: asyncio.Future[None]) -> None:
        if not ended.cancelled() and (exc := ended.exception()) is not None:
            logger.error("thread {} stopped on an error: {!r}", self.name, exc)

    def _drain(self) -> list[J] | None:
        """Wait for a job, then take every job already waiting (a batch); None once stopped."""
        first = self._jobs.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:  # stopping: handle this batch, then end
                self._jobs.put(None)
                break
            batch.append(job)
        return batch
