"""A queue's pause, kept in the store (as a flag) so a restart (even ``kill -9``) keeps it.

``set()`` changes the pause at once, so the scheduler obeys it on its next turn, and returns a
future that completes once the flag is durable. Set before the store is open (a program that
pauses the queue before starting it), the wish is kept and written when ``load()`` opens it,
and it wins over what was stored. A write that fails puts the pause back to what is stored,
unless a newer request was made meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from loguru import logger

from ai_admin.queue.store import QueueStore


class _Done:
    """An awaitable that is already complete (no event loop yet to make a future on)."""

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


class Durable:
    """What ``pause_queue`` returns: awaiting it opens the store if need be (the flag is
    written then) and waits for the write. Made lazily, so a caller that does not await it
    leaves no coroutine behind."""

    __slots__ = ("_start", "_written")

    def __init__(
        self, start: Callable[[], Awaitable[None]], written: asyncio.Future[None] | _Done
    ) -> None:
        self._start = start
        self._written = written

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        await self._start()
        await self._written


class QueuePause:
    def __init__(self, on_change: Callable[[], None], flag: str) -> None:
        self.flag = flag  # its name in the store
        self.paused = False
        self._on_change = on_change  # wakes the scheduler
        self._store: QueueStore | None = None
        self._durable = False  # what the store holds
        self._asked: bool | None = None  # asked before the store was open
        self._early: list[asyncio.Future[None]] = []
        self._latest = 0  # the newest write; only its failure reverts the pause

    def set(self, paused: bool) -> asyncio.Future[None] | _Done:
        """Pause or resume now; the result completes once that is durable."""
        self.paused = paused
        self._on_change()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # before any loop runs: written when the store opens
            self._asked = paused
            return _Done()
        done: asyncio.Future[None] = loop.create_future()
        done.add_done_callback(_retrieve)
        if self._store is None:
            self._asked = paused
            self._early.append(done)
        else:
            self._write(paused, [done])
        return done

    async def load(self, store: QueueStore) -> None:
        """Read the stored pause (the store is open); a pause asked for before wins."""
        stored = await store.get_flag(self.flag) is not None
        self._store, self._durable = store, stored
        asked, early = self._asked, self._early
        self._asked, self._early = None, []
        if asked is None:
            self.paused = stored
            self._on_change()
        elif asked != stored:
            self._write(asked, early)
        else:
            for done in early:
                _settle(done, None)

    def _write(self, paused: bool, done: list[asyncio.Future[None]]) -> None:
        assert self._store is not None
        self._latest += 1
        mine = self._latest
        write = asyncio.ensure_future(self._store.set_flag(self.flag, "1" if paused else None))

        def landed(f: asyncio.Future[None]) -> None:
            error = asyncio.CancelledError() if f.cancelled() else f.exception()
            if error is None:
                self._durable = paused
            else:
                logger.error("could not store the queue's pause: {}", error)
                if mine == self._latest and self.paused != self._durable:
                    self.paused = self._durable
                    self._on_change()
            for fut in done:
                _settle(fut, error)

        write.add_done_callback(landed)


def _settle(fut: asyncio.Future[None], error: BaseException | None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)


def _retrieve(fut: asyncio.Future[None]) -> None:
    """Nobody may await the result (the pause is already in effect): don't warn about it."""
    if not fut.cancelled():
        fut.exception()
