"""Tasks to rows and back, and the SQL the store runs: plain functions of a connection.

A task is stored as its JSON document beside the columns queries need. Each function here takes
the connection it runs on last, so the store can bind its arguments (``functools.partial``) and
hand it to whichever connection runs it: the loop's or the writer's for writes, the reader
thread's for scans.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ai_admin.queue import sqlite_failures as failures
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.stats import ERROR_STATUSES, TaskClass
from ai_admin.queue.store import SetAside, TaskQuery

DELETE_CHUNK = 1_000  # rows per commit: a few milliseconds of the loop's time
RECLAIM_CHUNK_PAGES = 1_000  # pages given back per commit: about 4 MB, 9 ms of the loop's time
_FLAG = "flag:"  # meta keys of the flags (get_flag / set_flag)
_IDS_PER_READ = 500  # ids bound in one IN (...): well under SQLite's limit on variables
# id, queue, task_type, priority and created_at never change, so an update leaves them (and
# the index on created_at) alone; indexes are few because every commit writes each one it touches.
_UPSERT = """
INSERT INTO tasks (id, seq, queue, task_type, status, finished, priority, created_at, error_code,
                   retry_count, max_retries, doc)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (id) DO UPDATE SET
    seq = excluded.seq, status = excluded.status, finished = excluded.finished,
    error_code = excluded.error_code, retry_count = excluded.retry_count,
    max_retries = excluded.max_retries, doc = excluded.doc
"""

_UNFINISHED = ",".join(f"'{s.value}'" for s in TaskStatus if not s.is_finished)
_KNOWN = frozenset(s.value for s in TaskStatus)
_LOAD_UNFINISHED = (
    f"SELECT id, doc FROM tasks WHERE status IN ({_UNFINISHED}) ORDER BY priority, seq"  # noqa: S608
)
# The distinct statuses stored, one index seek each (microseconds, not a scan of the history):
# a status this version does not know was written by a newer one.
_STATUSES = """
WITH RECURSIVE s(status) AS (
    SELECT min(status) FROM tasks
    UNION ALL SELECT (SELECT min(status) FROM tasks WHERE status > s.status) FROM s
    WHERE s.status IS NOT NULL
)
SELECT status FROM s WHERE status IS NOT NULL
"""
_SET_ASIDE = (
    "INSERT OR REPLACE INTO set_aside (id, reason, set_aside_at, status, doc) "
    "SELECT id, ?, ?, status, doc FROM tasks WHERE id = ?"
)
_ERRORS = ",".join(f"'{s.value}'" for s in ERROR_STATUSES)
_CLASS_COUNTS = (
    f"SELECT status, task_type, CASE WHEN status IN ({_ERRORS}) THEN error_code END, "  # noqa: S608
    "retry_count > 0, retry_count >= max_retries, count(*) FROM tasks "
    "GROUP BY 1, 2, 3, 4, 5"
)
Row = tuple[str, int, str, str, str, int, int, float, str | None, int, int, str]
Docs = list[tuple[str, str]]  # (id, document) as stored
Failed = list[tuple[str, str]]  # (id, why it did not load)


# -- rows and tasks ------------------------------------------------------------------------------


def row(task: DockerTask) -> Row:
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


def task(doc: str) -> DockerTask:
    return DockerTask.model_validate_json(doc)


def parse(rows: Docs) -> tuple[list[DockerTask], Failed]:
    """The tasks that load, and (id, reason) for those that do not."""
    tasks: list[DockerTask] = []
    bad: Failed = []
    for task_id, doc in rows:
        try:
            tasks.append(task(doc))
        except ValidationError as exc:
            bad.append((task_id, failures.load_failure(exc)))
    return tasks, bad


# -- writes ----------------------------------------------------------------------------------------


def upsert(rows: list[Row], conn: sqlite3.Connection) -> None:
    conn.executemany(_UPSERT, rows)


def write_counters(rows: list[tuple[str, float]], conn: sqlite3.Connection) -> None:
    conn.executemany("INSERT OR REPLACE INTO counters VALUES (?, ?)", rows)


def move_aside(bad: Failed, conn: sqlite3.Connection) -> None:
    now = time.time()
    conn.executemany(_SET_ASIDE, [(reason, now, task_id) for task_id, reason in bad])
    conn.executemany("DELETE FROM tasks WHERE id = ?", [(task_id,) for task_id, _ in bad])


def delete_chunk(statuses: list[str], queue: str | None, conn: sqlite3.Connection) -> int:
    """Up to ``DELETE_CHUNK`` tasks in these statuses (of ``queue``) deleted; how many were."""
    marks = ",".join("?" * len(statuses))
    of_queue = " AND queue = ?" if queue is not None else ""
    sql = (
        f"DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks WHERE status IN ({marks})"  # noqa: S608
        f"{of_queue} LIMIT {DELETE_CHUNK})"
    )
    return conn.execute(sql, [*statuses, *([queue] if queue is not None else [])]).rowcount


# A finished task's age counts from its end (completed_at; the stored documents of tasks that
# never ran have none, and count from their creation). created_at, never later than the end,
# narrows the scan to the index's old end first.
_FINISHED_BEFORE = f"""
DELETE FROM tasks WHERE rowid IN (
    SELECT rowid FROM tasks WHERE created_at < ? AND finished = 1
    AND coalesce(json_extract(doc, '$.completed_at'), created_at) < ? LIMIT {DELETE_CHUNK}
)
"""  # noqa: S608 - constants only
# Beyond the newest ``keep`` finished tasks (by creation), oldest first: in index order.
_FINISHED_BEYOND = f"""
DELETE FROM tasks WHERE rowid IN (
    SELECT rowid FROM tasks WHERE finished = 1 ORDER BY created_at DESC, rowid DESC
    LIMIT {DELETE_CHUNK} OFFSET ?
)
"""  # noqa: S608 - constants only


def delete_finished_before(cutoff_s: float, conn: sqlite3.Connection) -> int:
    """Up to ``DELETE_CHUNK`` finished tasks that ended before ``cutoff_s``; how many."""
    return conn.execute(_FINISHED_BEFORE, (cutoff_s, cutoff_s)).rowcount


def delete_finished_beyond(keep: int, conn: sqlite3.Connection) -> int:
    """Up to ``DELETE_CHUNK`` finished tasks older than the newest ``keep``; how many."""
    return conn.execute(_FINISHED_BEYOND, (keep,)).rowcount


def reclaim_chunk(conn: sqlite3.Connection) -> int:
    """Give up to ``RECLAIM_CHUNK_PAGES`` free pages back to the file system (incremental
    vacuum); how many pages were given back. Python's sqlite3 steps a pragma that returns no
    rows once, and one step frees one page: so one page per call, all in this transaction."""
    before = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    for _ in range(min(before, RECLAIM_CHUNK_PAGES)):
        conn.execute("PRAGMA incremental_vacuum(1)")
    return before - int(conn.execute("PRAGMA freelist_count").fetchone()[0])


def save_record(kind: str, record_id: str, doc: str | None, conn: sqlite3.Connection) -> None:
    if doc is None:
        conn.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, record_id))
    else:
        conn.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (kind, record_id, doc))


def add_snapshot(at_s: float, doc: str, conn: sqlite3.Connection) -> None:
    conn.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?)", (at_s, doc))


def delete_snapshots(before_s: float, conn: sqlite3.Connection) -> int:
    return conn.execute("DELETE FROM snapshots WHERE at < ?", (before_s,)).rowcount


def set_flag(name: str, value: str | None, conn: sqlite3.Connection) -> None:
    if value is None:
        conn.execute("DELETE FROM meta WHERE key = ?", (_FLAG + name,))
    else:
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_FLAG + name, value))


# -- reads -----------------------------------------------------------------------------------------


def get_doc(task_id: str, conn: sqlite3.Connection) -> str | None:
    found = conn.execute("SELECT doc FROM tasks WHERE id = ?", (task_id,)).fetchone()
    return None if found is None else str(found[0])


def statuses(task_ids: Sequence[str], conn: sqlite3.Connection) -> dict[str, str]:
    """The stored status of each of ``task_ids`` that is stored, read from its column."""
    found: dict[str, str] = {}
    for at in range(0, len(task_ids), _IDS_PER_READ):
        chunk = task_ids[at : at + _IDS_PER_READ]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT id, status FROM tasks WHERE id IN ({marks})"  # noqa: S608
        found.update(conn.execute(sql, chunk).fetchall())
    return found


def get_flag(name: str, conn: sqlite3.Connection) -> str | None:
    found = conn.execute("SELECT value FROM meta WHERE key = ?", (_FLAG + name,)).fetchone()
    return None if found is None else str(found[0])


def read_unfinished(conn: sqlite3.Connection) -> tuple[Docs, list[tuple[str, str]]]:
    """(id, doc) of the unfinished tasks, and (id, status) of those in an unknown status."""
    unknown = [st for (st,) in conn.execute(_STATUSES) if st not in _KNOWN]
    strays: list[tuple[str, str]] = []
    if unknown:
        marks = ",".join("?" * len(unknown))
        sql = f"SELECT id, status FROM tasks WHERE status IN ({marks})"  # noqa: S608
        strays = conn.execute(sql, unknown).fetchall()
    return conn.execute(_LOAD_UNFINISHED).fetchall(), strays


def load_unfinished(conn: sqlite3.Connection) -> Docs:
    return conn.execute(_LOAD_UNFINISHED).fetchall()


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


def list_page(query: TaskQuery, conn: sqlite3.Connection) -> tuple[Docs, int]:
    """A page of (id, doc) matching ``query``, and how many match in all."""
    where, args = _where(query)
    order = "DESC" if query.newest_first else "ASC"
    total = conn.execute(f"SELECT count(*) FROM tasks{where}", args).fetchone()[0]  # noqa: S608
    rows = conn.execute(
        f"SELECT id, doc FROM tasks{where} ORDER BY created_at {order}, seq {order} "  # noqa: S608
        "LIMIT ? OFFSET ?",
        (*args, query.limit, query.offset),
    ).fetchall()
    return rows, int(total)


def set_aside(conn: sqlite3.Connection) -> list[SetAside]:
    rows = conn.execute(
        "SELECT id, reason, set_aside_at FROM set_aside ORDER BY set_aside_at, id"
    ).fetchall()
    return [SetAside(*r) for r in rows]


def class_counts(conn: sqlite3.Connection) -> dict[TaskClass, int]:
    return {
        TaskClass(status, ttype, code, bool(has), bool(at_max)): n
        for status, ttype, code, has, at_max, n in conn.execute(_CLASS_COUNTS)
    }


def created_since(since_s: float, conn: sqlite3.Connection) -> list[tuple[float, int]]:
    return conn.execute(
        "SELECT CAST(created_at / 60 AS INTEGER) * 60, count(*) FROM tasks "
        "WHERE created_at >= ? GROUP BY 1",
        (since_s,),
    ).fetchall()


def load_records(kind: str, conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    rows = conn.execute("SELECT id, doc FROM records WHERE kind = ? ORDER BY id", (kind,))
    return {record_id: json.loads(doc) for record_id, doc in rows}


def snapshots(since_s: float, conn: sqlite3.Connection) -> list[tuple[float, dict[str, Any]]]:
    rows = conn.execute("SELECT at, doc FROM snapshots WHERE at >= ? ORDER BY at", (since_s,))
    return [(at, json.loads(doc)) for at, doc in rows]


def page_counts(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """(pages in the file, of them free, bytes per page)."""
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    return pages, free, int(conn.execute("PRAGMA page_size").fetchone()[0])


def document(doc: Mapping[str, Any]) -> str:
    """A record's or snapshot's JSON text, made when the write is issued."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


def load_counters(conn: sqlite3.Connection) -> dict[str, float]:
    return dict(conn.execute("SELECT name, value FROM counters").fetchall())
