"""The embedded store: one SQLite file in WAL mode, written by one thread with group commit.

All database work runs on two dedicated threads so the event loop never blocks: a writer and a
reader, each with its own connection (WAL lets reads proceed while a write commits). Whatever
writes are waiting when the writer wakes run in one transaction and one commit, so many
concurrent saves cost one fsync-bounded commit instead of one each. ``synchronous=NORMAL`` in
WAL mode keeps every commit across a crash of the agent (``kill -9``); ``FULL`` also survives
power loss.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.stats import ERROR_STATUSES, TaskClass
from ai_admin.queue.store import TaskQuery

T = TypeVar("T")
J = TypeVar("J")
_MAX_BATCH = 2_000
_CACHE_KIB = 16_384  # page cache per connection; the default 2 MB misses on a large history

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id          TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    queue       TEXT NOT NULL,
    task_type   TEXT NOT NULL,
    status      TEXT NOT NULL,
    finished    INTEGER NOT NULL,
    priority    INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    error_code  TEXT,
    retry_count INTEGER NOT NULL,
    max_retries INTEGER NOT NULL,
    doc         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_run_order ON tasks (finished, priority, seq);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, created_at);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_SCHEMA_VERSION = "1"
_UPSERT = """
INSERT INTO tasks (id, seq, queue, task_type, status, finished, priority, created_at, error_code,
                   retry_count, max_retries, doc)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (id) DO UPDATE SET
    seq = excluded.seq, queue = excluded.queue, task_type = excluded.task_type,
    status = excluded.status, finished = excluded.finished, priority = excluded.priority,
    created_at = excluded.created_at, error_code = excluded.error_code,
    retry_count = excluded.retry_count, max_retries = excluded.max_retries, doc = excluded.doc
"""

Row = tuple[str, int, str, str, str, int, int, float, str | None, int, int, str]
CounterRows = list[tuple[str, float]]
# (work, its future, the queue's counters as of the call: only a batch's newest are written)
_Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any], CounterRows | None]
_Read = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]


def _row(task: DockerTask) -> Row:
    return (
        task.id,
        task.seq,
        task.queue,
        task.task_type.value,
        task.status.value,
        int(task.status.is_finished),
        int(task.priority),
        task.created_at,
        task.error_code,
        task.retry_count,
        task.max_retries or 0,
        task.model_dump_json(exclude_none=True),  # every nullable field defaults to None
    )


def _task(doc: str) -> DockerTask:
    return DockerTask.model_validate_json(doc)


class SqliteStore:
    def __init__(
        self, path: str | Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._reads: queue.SimpleQueue[_Read | None] = queue.SimpleQueue()
        self._reader: threading.Thread | None = None

    # -- the threads -----------------------------------------------------------------------------

    async def open(self) -> None:
        if self._thread is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The writer first: it creates the schema the reader's connection expects.
        self._thread = await _start("ai-admin-sqlite", self._connect, self._jobs, self._run_batch)
        self._reader = await _start(
            "ai-admin-sqlite-read", self._connect_reader, self._reads, self._run_reads
        )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        conn.executescript(_SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (_SCHEMA_VERSION,))
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        conn.execute("PRAGMA query_only=1")
        return conn

    @staticmethod
    def _run_reads(conn: sqlite3.Connection, batch: list[_Read]) -> None:
        """The reads waiting together share one snapshot and one wake-up of the loop."""
        settled: list[tuple[asyncio.Future[Any], bool, Any]] = []
        conn.execute("BEGIN")
        try:
            for fn, fut in batch:
                try:
                    settled.append((fut, True, fn(conn)))
                except Exception as exc:
                    settled.append((fut, False, exc))
        finally:
            conn.execute("COMMIT")
        batch[0][1].get_loop().call_soon_threadsafe(_settle_all, settled)

    @classmethod
    def _run_batch(cls, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        """All jobs in one transaction; if any fails, each runs alone so only it fails."""
        try:
            outcomes = cls._transaction(conn, batch)
        except Exception:
            outcomes = []
            for job in batch:
                try:
                    outcomes += cls._transaction(conn, [job])
                except Exception as exc:
                    outcomes.append((False, exc))
        # One wake-up of the event loop per batch, not one per job.
        settled = [(job[1], ok, value) for job, (ok, value) in zip(batch, outcomes, strict=True)]
        batch[0][1].get_loop().call_soon_threadsafe(_settle_all, settled)

    @staticmethod
    def _transaction(conn: sqlite3.Connection, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = [(True, fn(conn)) for fn, _, _ in jobs]
            counters = next((c for _, _, c in reversed(jobs) if c), None)
            if counters:
                conn.executemany("INSERT OR REPLACE INTO counters VALUES (?, ?)", counters)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results

    def _submit(
        self, fn: Callable[[sqlite3.Connection], T], counters: CounterRows | None = None
    ) -> asyncio.Future[T]:
        if self._thread is None:
            raise RuntimeError("store is not open")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((fn, fut, counters))
        return fut

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read on the reader thread."""
        if self._reader is None:
            raise RuntimeError("store is not open")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._reads.put((fn, fut))
        return await fut

    async def close(self) -> None:
        # Cleared first: later calls fail instead of never settling.
        thread, self._thread = self._thread, None
        reader, self._reader = self._reader, None
        if reader is not None:
            self._reads.put(None)
            await asyncio.to_thread(reader.join)
        if thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(thread.join)

    # -- the interface -------------------------------------------------------------------------

    def save(
        self, tasks: Sequence[DockerTask], counters: Mapping[str, float] | None = None
    ) -> asyncio.Future[None]:
        rows = [_row(t) for t in tasks]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(_UPSERT, rows)

        return self._submit(write, list(counters.items()) if counters else None)

    async def get(self, task_id: str) -> DockerTask | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT doc FROM tasks WHERE id = ?", (task_id,)).fetchone()
            return row[0] if row else None

        doc = await self._call(read)
        return _task(doc) if doc is not None else None

    async def list_tasks(self, query: TaskQuery) -> tuple[list[DockerTask], int]:
        where, args = _where(query)
        order = "DESC" if query.newest_first else "ASC"

        def read(conn: sqlite3.Connection) -> tuple[list[str], int]:
            total = conn.execute(f"SELECT count(*) FROM tasks{where}", args).fetchone()[0]  # noqa: S608
            docs = conn.execute(
                f"SELECT doc FROM tasks{where} ORDER BY created_at {order}, seq {order} "  # noqa: S608
                "LIMIT ? OFFSET ?",
                (*args, query.limit, query.offset),
            ).fetchall()
            return [d for (d,) in docs], total

        docs, total = await self._call(read)
        return [_task(d) for d in docs], total

    async def load_unfinished(self) -> list[DockerTask]:
        def read(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT doc FROM tasks WHERE finished = 0 ORDER BY priority, seq"
            ).fetchall()
            return [d for (d,) in rows]

        return [_task(d) for d in await self._call(read)]

    async def delete(self, statuses: Collection[TaskStatus]) -> int:
        values = [s.value for s in statuses]
        marks = ",".join("?" * len(values))

        def write(conn: sqlite3.Connection) -> int:
            cur = conn.execute(f"DELETE FROM tasks WHERE status IN ({marks})", values)  # noqa: S608
            return cur.rowcount

        return await self._submit(write) if values else 0

    async def class_counts(self) -> dict[TaskClass, int]:
        errors = ",".join(f"'{s.value}'" for s in ERROR_STATUSES)
        sql = (
            f"SELECT status, task_type, CASE WHEN status IN ({errors}) THEN error_code END, "  # noqa: S608
            "retry_count > 0, retry_count >= max_retries, count(*) FROM tasks "
            "GROUP BY 1, 2, 3, 4, 5"
        )

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql).fetchall()

        return {
            TaskClass(status, ttype, code, bool(has), bool(at_max)): n
            for status, ttype, code, has, at_max, n in await self._call(read)
        }

    async def created_since(self, since_s: float) -> list[tuple[float, int]]:
        def read(conn: sqlite3.Connection) -> list[tuple[float, int]]:
            return conn.execute(
                "SELECT CAST(created_at / 60 AS INTEGER) * 60, count(*) FROM tasks "
                "WHERE created_at >= ? GROUP BY 1",
                (since_s,),
            ).fetchall()

        return await self._call(read)

    async def load_counters(self) -> dict[str, float]:
        def read(conn: sqlite3.Connection) -> list[tuple[str, float]]:
            return conn.execute("SELECT name, value FROM counters").fetchall()

        return dict(await self._call(read))


def _where(query: TaskQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if query.status:
        clauses.append(f"status IN ({','.join('?' * len(query.status))})")
        args.extend(s.value for s in query.status)
    if query.task_type is not None:
        clauses.append("task_type = ?")
        args.append(query.task_type.value)
    if query.queue is not None:
        clauses.append("queue = ?")
        args.append(query.queue)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


async def _start(
    name: str,
    connect: Callable[[], sqlite3.Connection],
    jobs: queue.SimpleQueue[J | None],
    run: Callable[[sqlite3.Connection, list[J]], None],
) -> threading.Thread:
    """A thread owning one connection that runs batches of jobs until it drains a None."""
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def serve() -> None:
        try:
            conn = connect()
        except Exception as exc:  # reported to open()'s caller
            ready.get_loop().call_soon_threadsafe(_settle, ready, False, exc)
            return
        ready.get_loop().call_soon_threadsafe(_settle, ready, True, None)
        try:
            while (batch := _drain(jobs)) is not None:
                run(conn, batch)
        finally:
            conn.close()

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    await ready
    return thread


def _drain(jobs: queue.SimpleQueue[J | None]) -> list[J] | None:
    """Wait for a job, then take every job already waiting (a batch); None once closed."""
    first = jobs.get()
    if first is None:
        return None
    batch = [first]
    while len(batch) < _MAX_BATCH:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is None:  # closing: handle this batch, then stop
            jobs.put(None)
            break
        batch.append(job)
    return batch


def _settle_all(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for fut, ok, value in settled:
        _settle(fut, ok, value)


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():  # the caller was cancelled; the write itself still happened
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
