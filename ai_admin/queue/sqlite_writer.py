"""Group commit: the writes issued during one turn of the event loop share one transaction.

A write is a function of a connection, queued with ``submit`` and settled when its batch has
been committed, in call order. Many concurrent saves cost one commit; the queue's counters go
last in the batch, and are written only if every write they count was.

Where the commit runs (``SqliteStore(writer=...)``; by default on the loop with ``NORMAL``, on
the thread with ``FULL``):

- ``"loop"``: on the loop's own connection, at the end of the turn. In WAL mode with
  ``synchronous=NORMAL`` a commit only writes to the OS and takes tens of microseconds, less than
  handing the work to a thread and back;
- ``"thread"``: on one writer thread with its own connection, one batch at a time; while it
  commits (an fsync with ``synchronous=FULL``), the next batch gathers on the loop and goes as
  soon as the last one has landed.

Another process holding the write lock must not freeze the loop: ``BEGIN IMMEDIATE`` waits only
briefly, and the whole batch is tried again later on a timer (every write is an idempotent
upsert or a chunk of a repeated delete), until the busy timeout, when it fails. If a part of a
batch fails, each part runs alone so that only it fails; a full disk fails the whole batch with
``SYSTEM_DISK_SPACE`` and writes none of its counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

from ai_admin.errors import StoreError
from ai_admin.queue import sqlite_failures as failures
from ai_admin.queue import sqlite_queries as queries
from ai_admin.queue import sqlite_schema as schema
from ai_admin.threads import Call, JobThread, settle_all

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]
Job = tuple[Work, asyncio.Future[Any]]
Outcome = tuple[bool, Any]  # (succeeded, result or exception)
WriterThread = JobThread[sqlite3.Connection, Call]
CHECKPOINT_EVERY = 64  # commits between background checkpoints
BUSY_RETRY_S = (0.01, 0.5)  # first and longest wait between attempts


class CannotBegin(sqlite3.OperationalError):
    """No transaction could begin: the batch is tried again whole, not job by job."""


class DiskFull(Exception):
    """The disk filled up during a group commit: SQLite rolled all of it back."""


def transaction(conn: sqlite3.Connection, work: list[Work]) -> list[Outcome]:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise CannotBegin(*exc.args) from exc
    try:
        results = [(True, fn(conn)) for fn in work]
        conn.execute("COMMIT")
    except BaseException:
        # After a full disk or an I/O error SQLite has already rolled back; a ROLLBACK then
        # would fail ("cannot rollback") and hide the error that says what happened.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return results


def run_batch(
    directory: Path, work: list[Work], last: Work | None, conn: sqlite3.Connection
) -> list[Outcome]:
    """All of it in one transaction, ``last`` (the counters) last. If a part fails, each
    runs alone so only it fails, and ``last`` only if all the others succeeded.

    Raises CannotBegin if another process holds the write lock, and DiskFull if the disk
    filled up (nothing was written: running the parts alone would store some and not
    others, with counters that no longer match)."""
    try:
        return transaction(conn, work if last is None else [*work, last])
    except CannotBegin:
        raise
    except Exception as exc:
        if failures.is_disk_full(exc, directory):
            raise DiskFull from exc
    outcomes = [_alone(directory, conn, fn) for fn in work]
    if last is not None:
        all_ok = all(ok for ok, _ in outcomes)
        outcomes.append(_alone(directory, conn, last) if all_ok else (False, None))
    return outcomes


def _alone(directory: Path, conn: sqlite3.Connection, fn: Work) -> Outcome:
    try:
        return transaction(conn, [fn])[0]
    except CannotBegin:
        raise
    except Exception as exc:
        if failures.is_disk_full(exc, directory):
            return False, disk_full_error(directory, exc)
        return False, exc


def disk_full_error(directory: Path, exc: BaseException) -> StoreError:
    error = failures.disk_full(directory)
    error.__cause__ = exc.__cause__ or exc
    return error


@dataclass(frozen=True, slots=True)
class _Batch:
    jobs: list[Job]
    counters: dict[str, float]  # the newest issued with these writes
    changed: list[tuple[str, float]]  # those of them not yet written

    def runner(self, directory: Path) -> Callable[[sqlite3.Connection], list[Outcome]]:
        last = partial(queries.write_counters, self.changed) if self.changed else None
        return partial(run_batch, directory, [fn for fn, _ in self.jobs], last)


class GroupCommit:
    """The writes of a store, committed together on the loop's connection or a writer thread
    (``attach``), until ``close``; ``checkpoint`` is asked for every ``CHECKPOINT_EVERY``
    commits."""

    def __init__(self, directory: Path, checkpoint: Callable[[], None]) -> None:
        self._directory = directory
        self._checkpoint = checkpoint
        self._conn: sqlite3.Connection | None = None  # commits on the loop, or
        self._thread: WriterThread | None = None  # on this thread
        self._pending: list[Job] = []  # writes issued, not yet handed to a commit
        self._counters: dict[str, float] = {}  # the newest issued since the last commit
        self._counters_written: dict[str, float] = {}
        self._busy_since: float | None = None  # another process held the write lock
        self._retry: asyncio.TimerHandle | None = None  # on the loop
        self._flusher: asyncio.Task[None] | None = None  # feeds the writer thread
        self._commits = 0  # since the last checkpoint was asked for
        self._disk_full = False  # the last commit failed for want of space

    def attach(
        self, conn: sqlite3.Connection | None = None, thread: WriterThread | None = None
    ) -> None:
        """Commit from now on with ``conn`` on the loop, or on ``thread``."""
        self._conn, self._thread = conn, thread
        self._counters_written = {}  # what this connection's file holds is not known

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        if self._thread is not None:
            if self._flusher is None:
                self._flusher = loop.create_task(self._flush(self._thread))
        elif not self._pending and self._retry is None:
            loop.call_soon(self._write_pending)
        self._pending.append((fn, fut))
        return fut

    def set_counters(self, counters: Mapping[str, float]) -> None:
        """The newest win: one write per commit, of the ones that changed."""
        self._counters = dict(counters)

    async def close(self) -> None:
        """What was issued before close() is written (or fails), waiting out a held lock."""
        conn, self._conn = self._conn, None
        self._thread = None
        if self._retry is not None:  # waited for here instead
            self._retry.cancel()
            self._retry = None
        if conn is not None:
            # Polled: a lock held by another process signals nothing when it is released.
            while (delay := self._commit_pending(conn)) is not None:  # noqa: ASYNC110
                await asyncio.sleep(delay)
        if self._flusher is not None:  # it goes on until nothing is pending
            await asyncio.wait([self._flusher])

    # -- on the loop -----------------------------------------------------------------------------

    def _write_pending(self) -> None:
        self._retry = None
        if self._conn is None:  # close() wrote what was issued before it
            self._fail_pending(RuntimeError("store is not open"))
        elif (delay := self._commit_pending(self._conn)) is not None:
            self._retry = asyncio.get_running_loop().call_later(delay, self._write_pending)

    def _commit_pending(self, conn: sqlite3.Connection) -> float | None:
        """Commit what is pending; if another process holds the write lock, keep it pending
        and return how long to wait before trying again (it fails once that took too long)."""
        batch = self._take()
        if batch is None:
            return None
        try:
            outcomes = batch.runner(self._directory)(conn)
        except (CannotBegin, DiskFull) as exc:
            return self._landed(batch, exc)
        return self._landed(batch, outcomes)

    # -- on the writer thread --------------------------------------------------------------------

    async def _flush(self, thread: WriterThread) -> None:
        """One batch at a time on the thread; what is issued meanwhile goes with the next."""
        try:
            # Asked only while writes wait: a take of nothing drops the counters kept for later.
            while self._pending and (batch := self._take()) is not None:
                try:
                    outcomes = await thread.call(batch.runner(self._directory))
                except (CannotBegin, DiskFull) as exc:
                    delay = self._landed(batch, exc)
                except Exception as exc:  # run_batch itself failed: so does each write
                    self._busy_since = None
                    settle_all([(fut, False, exc) for _, fut in batch.jobs])
                    continue
                else:
                    delay = self._landed(batch, outcomes)
                if delay is not None:
                    await asyncio.sleep(delay)
        finally:
            self._flusher = None

    # -- a batch ---------------------------------------------------------------------------------

    def _take(self) -> _Batch | None:
        jobs, self._pending = self._pending, []
        counters, self._counters = self._counters, {}
        if not jobs:
            return None
        # Only the counters that changed since the last commit are written.
        changed = [(k, v) for k, v in counters.items() if self._counters_written.get(k) != v]
        return _Batch(jobs, counters, changed)

    def _landed(self, batch: _Batch, result: list[Outcome] | Exception) -> float | None:
        """Settle what a commit did; the delay before trying again if it could not begin."""
        if isinstance(result, CannotBegin):  # the write lock is held elsewhere; every write is
            # an idempotent upsert or a chunk of a repeated delete, so trying again is safe
            self._pending = batch.jobs + self._pending
            self._keep_counters(batch.counters)
            return self._wait_for_lock(result)
        self._busy_since = None
        if isinstance(result, DiskFull):
            self._fail_for_space(batch.jobs, result)
            return None
        assert not isinstance(result, Exception)
        if self._disk_full:
            self._disk_full = False
            logger.warning("the task database is written again: its disk has space")
        if batch.changed:
            self._settle_counters(batch.changed, batch.counters, result)
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY:
            self._commits = 0
            self._checkpoint()
        futures = [fut for _, fut in batch.jobs]
        settle_all([(fut, ok, value) for fut, (ok, value) in zip(futures, result, strict=False)])
        return None

    def _settle_counters(
        self, changed: list[tuple[str, float]], counters: dict[str, float], outcomes: list[Outcome]
    ) -> None:
        """The counters go in only with every write they count. If a write failed, they
        counted it: they are dropped, and the caller's next ``save`` brings its corrected ones."""
        if outcomes[-1][0]:
            self._counters_written.update(changed)
        elif all(ok for ok, _ in outcomes[:-1]):  # only the counters failed: kept for later
            self._keep_counters(counters)
            logger.error("could not write the queue's counters: {}", outcomes[-1][1])

    def _fail_for_space(self, jobs: list[Job], exc: DiskFull) -> None:
        """Nothing of the batch is stored (SQLite rolled it back) and its counters are dropped;
        each caller gets its own ``SYSTEM_DISK_SPACE`` error."""
        if not self._disk_full:
            self._disk_full = True
            logger.error(
                "the task database cannot be written, its disk is full ({}): free space in {}",
                exc.__cause__,
                self._directory,
            )
        settle_all([(fut, False, disk_full_error(self._directory, exc)) for _, fut in jobs])

    def _keep_counters(self, counters: dict[str, float]) -> None:
        """Unwritten counters go with the next commit, under any newer values."""
        self._counters = {**counters, **self._counters}

    def _wait_for_lock(self, exc: sqlite3.OperationalError) -> float | None:
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
        waited = now - self._busy_since
        if waited >= schema.BUSY_TIMEOUT_S:
            self._busy_since = None
            self._fail_pending(exc)
            return None
        first, longest = BUSY_RETRY_S
        return min(longest, max(first, waited))

    def _fail_pending(self, exc: Exception) -> None:
        jobs, self._pending = self._pending, []
        settle_all([(fut, False, exc) for _, fut in jobs])
