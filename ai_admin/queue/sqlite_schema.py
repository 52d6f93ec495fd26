"""The task database's file: its schema, its connections' settings, and its modes at rest.

One ``tasks`` table (each task's JSON document beside the columns that are filtered, sorted or
counted), the queue's ``counters``, ``meta`` (the schema version and the flags), ``set_aside``
(tasks that failed to load), ``records`` (small JSON documents of other kinds, by kind and id:
schedules, and next batches and named queues) and ``snapshots`` (the queue's counters, taken
periodically, that history trends are computed from). The schema is created or brought up to
date by the first connection, the loop's; the others (the reader and checkpointer threads, the
writer thread) find it in place: a table added later is created when an older database opens.

Space comes back to the file system: the database is in ``auto_vacuum=INCREMENTAL`` mode, so
the pages freed by deleting history can be handed back a chunk at a time
(``sqlite_queries.reclaim_chunk``). A new database is created in that mode; an older one is
converted once, when it opens, by a ``VACUUM`` (it rewrites the file: measured 0.9 s for a
200 MB database, and it needs that much free space again while it runs). One larger than
``CONVERT_AT_OPEN_MAX_BYTES`` is left as it is, with a warning: its freed pages are reused by
later writes, but the file does not shrink until an operator converts it with the agent stopped.
The WAL is cut back to ``WAL_SIZE_LIMIT_BYTES`` after each checkpoint that empties it.

At rest the database and its ``-wal``/``-shm`` files are owner-only (SQLite gives the latter the
database's mode) in an owner-only directory.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from pathlib import Path
from typing import Literal

from loguru import logger

from ai_admin.private_files import FILE_MODE, private_dir

Synchronous = Literal["NORMAL", "FULL"]
BACKSTOP_CHECKPOINT_PAGES = 4_000
CACHE_KIB = 16_384  # page cache per connection; the default 2 MB misses on a large history
# Another process holding the write lock must not freeze the loop: the writing connection waits
# briefly, then the batch is tried again later, until the busy timeout the threads also use.
LOOP_BUSY_MS = 10
BUSY_TIMEOUT_S = 5.0
AUTO_VACUUM_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
CONVERT_AT_OPEN_MAX_BYTES = 1 << 30  # about 5 s of VACUUM at start-up
WAL_SIZE_LIMIT_BYTES = 16 * 1_048_576

SCHEMA = """
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
DROP INDEX IF EXISTS tasks_run_order;
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, created_at);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS set_aside (
    id           TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    set_aside_at REAL NOT NULL,
    status       TEXT NOT NULL,
    doc          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    doc  TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (at REAL PRIMARY KEY, doc TEXT NOT NULL);
"""
SCHEMA_VERSION = "1"


def connect_writer(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    """A connection that writes: WAL, the given durability, a short wait for the write lock."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    # Before WAL: a new database takes the mode only before its first page is written.
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    # Checkpoints run on their own thread; this one is a backstop.
    conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    conn.execute(f"PRAGMA busy_timeout={LOOP_BUSY_MS}")
    return conn


def connect_loop(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    """The loop's connection, the first one opened: it creates or updates the schema."""
    conn = connect_writer(path, synchronous)
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")  # schema, at start-up
    convert_to_incremental(conn, path)
    conn.executescript(SCHEMA)
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    conn.execute(f"PRAGMA busy_timeout={LOOP_BUSY_MS}")
    return conn


def convert_to_incremental(conn: sqlite3.Connection, path: Path) -> None:
    """An existing database made before ``auto_vacuum=INCREMENTAL`` is converted once (a
    ``VACUUM``), unless it is too large to rewrite at start-up."""
    (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
    if mode == AUTO_VACUUM_INCREMENTAL:
        return
    if not conn.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchone():
        return  # a new database: the mode set on connecting applies from its first table
    size = path.stat().st_size
    if size > CONVERT_AT_OPEN_MAX_BYTES:
        logger.warning(
            "the task database {} ({} MB) predates incremental vacuum and is too large to "
            "convert at start-up: deleted history is reused but not given back to the file "
            "system. With the agent stopped, run: sqlite3 {} 'PRAGMA auto_vacuum=INCREMENTAL; "
            "VACUUM'",
            path,
            size // 1_048_576,
            path,
        )
        return
    logger.info("converting the task database to incremental vacuum (once, {} MB)", size >> 20)
    conn.execute("VACUUM")


def connect_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection for a thread, which may wait for locks as long as it takes."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    conn.execute("PRAGMA query_only=1")
    return conn


def private_files(path: Path) -> None:
    """The database owner-only from its creation; its files and directory tightened if loose.

    SQLite creates ``-wal`` and ``-shm`` with the database's mode, so they start owner-only too.
    A shared directory (sticky, like /tmp) is left as it is: only a directory of its own is
    the store's to tighten.
    """
    parent = path.parent
    if not (parent.is_dir() and parent.stat().st_mode & stat.S_ISVTX):
        private_dir(parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        other = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            if other.stat().st_mode & 0o077:
                os.chmod(other, FILE_MODE)
