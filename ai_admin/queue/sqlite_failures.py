"""SQLite's failures in the agent's words: the one boundary where they become ``StoreError``.

Three kinds matter to an operator, each with its own advice:
- a full disk (``SQLITE_FULL``, or an I/O error while the data directory has almost no space):
  ``SYSTEM_DISK_SPACE``, naming the directory and what to free;
- a database that cannot be opened (not a database, damaged, a directory, no permission): one
  line naming the file and what to do, which ``ai-admin serve`` prints as it stops;
- a stored task that fails to load: a short reason for the set-aside report, built from the
  validation error's locations and messages only (never the input, which may be anything).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from pydantic import ValidationError

from ai_admin.errors import ErrorCode, StoreError

# Primary result codes (the low byte of an extended code such as SQLITE_IOERR_WRITE).
_FULL = frozenset({sqlite3.SQLITE_FULL})
_IO = frozenset({sqlite3.SQLITE_IOERR})
_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_DENIED = frozenset({sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_AUTH})
# An I/O error with less than this free is taken for a full disk: SQLite reports a short write
# of the WAL or the shared-memory file as an I/O error, not always as SQLITE_FULL.
_LOW_SPACE_BYTES = 1 << 20
_REASON_CHARS = 300

_MOVE_ASIDE = (
    "move it aside and restart (the agent creates a new, empty database), "
    "or restore it from a backup"
)


def _primary_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def free_bytes(directory: Path) -> int | None:
    """Space left for an unprivileged writer on ``directory``'s file system."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def is_disk_full(exc: BaseException, directory: Path) -> bool:
    """Whether ``exc`` means the disk holding ``directory`` is full."""
    code = _primary_code(exc)
    if code in _FULL or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
        return True
    if code in _IO:
        free = free_bytes(directory)
        return free is not None and free < _LOW_SPACE_BYTES
    return False


def is_damaged(exc: BaseException) -> bool:
    return _primary_code(exc) in _DAMAGED


def disk_full(directory: Path) -> StoreError:
    """Nothing of the write was stored; the agent recovers by itself once there is space."""
    free = free_bytes(directory)
    return StoreError(
        f"No space left for the task database in {directory}: nothing was stored.",
        code=ErrorCode.SYSTEM_DISK_SPACE,
        details={"data_dir": str(directory), "free_bytes": free},
        suggestions=[
            f"Free space on the file system that holds {directory}: remove or move other "
            "files there. The agent recovers by itself; nothing needs restarting.",
            "Delete finished tasks with `queue_clear`: the database reuses their space "
            "(recording the deletion needs a little free space itself).",
            "Then send the request again.",
        ],
    )


def cannot_open(path: Path, exc: BaseException) -> StoreError:
    """The database cannot be opened: one line naming the file and what to do."""
    if is_disk_full(exc, path.parent):
        error = disk_full(path.parent)
        error.message = (
            f"cannot open the task database {path}: no space left on its file system; "
            "free some space and start the agent again"
        )
        return error
    if path.is_dir():
        reason, advice = "it is a directory, not a database file", _MOVE_ASIDE
    elif isinstance(exc, PermissionError) or _primary_code(exc) in _DENIED:
        reason = "permission denied"
        advice = "give the agent's user read and write access to it and to its directory"
    elif is_damaged(exc):
        reason, advice = "the file is not a database or is damaged", _MOVE_ASIDE
    else:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        advice = _MOVE_ASIDE
    return StoreError(
        f"cannot open the task database {path}: {reason}; {advice}",
        details={"path": str(path)},
        suggestions=[advice[0].upper() + advice[1:] + "."],
    )


def damaged(path: Path) -> StoreError:
    """A read met a damaged page: the database needs replacing, not retrying."""
    return StoreError(
        f"the task database {path} is damaged; {_MOVE_ASIDE}",
        details={"path": str(path)},
        suggestions=[_MOVE_ASIDE[0].upper() + _MOVE_ASIDE[1:] + "."],
    )


def load_failure(exc: ValidationError) -> str:
    """Why a stored task did not load: where and what, never the stored value itself."""
    parts = [
        f"{'.'.join(str(p) for p in error['loc']) or 'document'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    reason = "; ".join(parts) or "not a valid task"
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 1] + "…"
