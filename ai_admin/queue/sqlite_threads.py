"""The store's threads, each with a connection of its own: what would hold the loop too long.

- the reader runs scans (listings, statistics at start-up); the reads waiting together share
  one snapshot and one wake-up of the loop;
- the checkpointer copies committed pages from the WAL into the database (a passive checkpoint,
  which never blocks the writer);
- the writer, with ``SqliteStore(writer="thread")``, commits the group commits
  (``sqlite_writer``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from loguru import logger

from ai_admin.queue import sqlite_schema as schema
from ai_admin.queue.sqlite_writer import WriterThread
from ai_admin.threads import Call, JobThread, Settled, hand_back, run_calls

Connect = Callable[[], sqlite3.Connection]
ReaderThread = JobThread[sqlite3.Connection, Call]
CheckpointThread = JobThread[sqlite3.Connection, bool]


def reader(connect: Connect) -> ReaderThread:
    return JobThread("ai-admin-sqlite-read", connect, _run_reads, sqlite3.Connection.close)


def checkpointer(connect: Connect) -> CheckpointThread:
    return JobThread("ai-admin-sqlite-checkpoint", connect, _checkpoint, sqlite3.Connection.close)


def writer(path: Path, synchronous: schema.Synchronous) -> WriterThread:
    connect = partial(schema.connect_writer, path, synchronous)
    return JobThread("ai-admin-sqlite-write", connect, run_calls, sqlite3.Connection.close)


def _run_reads(conn: sqlite3.Connection, batch: list[Call]) -> None:
    """The reads waiting together share one snapshot and one wake-up of the loop."""
    settled: list[Settled] = []
    try:
        conn.execute("BEGIN")
    except sqlite3.Error as exc:  # each read fails, and the thread lives on for the next
        settled = [(fut, False, exc) for _, fut in batch]
    else:
        try:
            for fn, fut in batch:
                try:
                    settled.append((fut, True, fn(conn)))
                except Exception as exc:
                    settled.append((fut, False, exc))
        finally:
            with contextlib.suppress(sqlite3.Error):  # a read-only snapshot ends anyway
                conn.execute("COMMIT")
    hand_back(settled)


def _checkpoint(conn: sqlite3.Connection, requests: list[Any]) -> None:
    """Copy committed pages from the WAL into the database, without blocking the writer."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error as exc:  # a full disk: the WAL keeps the pages; the next one retries
        logger.warning("could not checkpoint the task database: {}", exc)
