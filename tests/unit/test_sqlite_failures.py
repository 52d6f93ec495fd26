"""The SQLite store when its machine fails it: modes at rest, a full disk (a real one: a small
tmpfs filled to the last byte), a database that cannot be opened, rows that do not load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from loguru import logger
from queue_helpers import within
from small_disk import fill, small_disk
from spoiled_db import SPOILERS

from ai_admin.errors import ErrorCode, StoreError
from ai_admin.queue import sqlite_failures as failures
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore, Writer
from ai_admin.queue.store import TaskQuery


def _task(n: int, status: TaskStatus = TaskStatus.PENDING) -> DockerTask:
    return DockerTask(
        task_type=TaskType.PULL, params={"image_name": f"img{n}"}, status=status, seq=n
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def errors_logged() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    yield lines
    logger.remove(sink)


# -- data at rest ----------------------------------------------------------------------------------


async def test_a_new_database_its_files_and_directory_are_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = SqliteStore(data / "ai-admin.db")
    await store.open()
    try:
        await store.save([_task(1)])
        assert _mode(data) == 0o700
        for name in ("ai-admin.db", "ai-admin.db-wal", "ai-admin.db-shm"):
            assert _mode(data / name) == 0o600, name
    finally:
        await store.close()


async def test_an_existing_loose_database_is_tightened_when_opened(tmp_path: Path) -> None:
    # Regression: the data directory was 0755 and the database 0644, readable by every user.
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # noqa: S103 (loose on purpose)
    db = data / "ai-admin.db"
    outside = sqlite3.connect(db, isolation_level=None)  # keeps -wal and -shm in place
    try:
        outside.execute("PRAGMA journal_mode=WAL")
        outside.execute("CREATE TABLE t (x)")
        files = [db, db.with_name("ai-admin.db-wal"), db.with_name("ai-admin.db-shm")]
        for path in [data, *files]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        store = SqliteStore(db)
        await store.open()
        await store.close()
        assert _mode(data) == 0o700
        assert [_mode(p) for p in files] == [0o600] * 3
    finally:
        outside.close()


async def test_a_shared_sticky_directory_is_left_as_it_is(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # noqa: S103 (a shared directory like /tmp)
    store = SqliteStore(shared / "mine.db")
    await store.open()
    await store.close()
    assert _mode(shared) == 0o1777  # like /tmp: not the store's to tighten
    assert _mode(shared / "mine.db") == 0o600


# -- a database that cannot be opened --------------------------------------------------------------


@pytest.mark.parametrize("spoil", SPOILERS)
async def test_a_database_that_cannot_be_opened_says_which_and_what_to_do(
    tmp_path: Path, spoil: object
) -> None:
    db = tmp_path / "ai-admin.db"
    store = SqliteStore(db)
    await store.open()
    await store.save([_task(n) for n in range(200)])
    await store.close()
    assert callable(spoil)
    spoil(db)

    with pytest.raises(StoreError) as raised:
        await SqliteStore(db).open()
    message = raised.value.message
    assert "\n" not in message
    assert f"cannot open the task database {db}: " in message
    assert "move it aside and restart" in message
    assert "restore it from a backup" in message
    assert raised.value.code is ErrorCode.INTERNAL_ERROR


# -- a full disk -----------------------------------------------------------------------------------


@pytest.fixture
async def disk(tmp_path: Path) -> AsyncIterator[Path]:
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


@pytest.fixture(params=["loop", "thread"])
def writer(request: pytest.FixtureRequest) -> Writer:
    """Where the store commits: the tests of failed writes run with each."""
    mode: Writer = request.param
    return mode


@pytest.fixture
async def store_on_disk(disk: Path, writer: Writer) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(disk / "data" / "ai-admin.db", writer=writer)
    await store.open()
    yield store
    await store.close()


def _assert_disk_space(error: BaseException | None, data_dir: Path) -> None:
    assert isinstance(error, StoreError), repr(error)
    assert error.code is ErrorCode.SYSTEM_DISK_SPACE
    assert error.http_status == 507
    assert str(data_dir) in error.message
    assert error.details["data_dir"] == str(data_dir)
    assert any("queue_clear" in s for s in error.suggestions)
    assert any("other files" in s for s in error.suggestions)


async def test_a_full_disk_fails_the_whole_batch_stores_nothing_and_recovers(
    store_on_disk: SqliteStore, disk: Path, errors_logged: list[str]
) -> None:
    # Regression: a full disk answered INTERNAL_ERROR ("cannot rollback" hid the cause), and
    # counters counting the lost writes were kept for the next commit.
    store = store_on_disk
    data_dir = store.path.parent
    before = [_task(n) for n in range(1, 4)]
    await store.save(before, {"enqueued": 3.0})
    filler = fill(disk)

    lost = [_task(n) for n in range(10, 60)]
    writes = [store.save([t]) for t in lost[:-1]]  # one loop turn: one group commit
    writes.append(store.save([lost[-1]], {"enqueued": 53.0}))
    results = await within(asyncio.gather(*writes, return_exceptions=True))
    for error in results:
        _assert_disk_space(error, data_dir)
    assert len({id(e) for e in results}) == len(results)  # each caller its own error
    assert sum("disk is full" in line for line in errors_logged) == 1

    # Nothing of the batch is stored, and the store answers meanwhile.
    assert all([await store.get(t.id) for t in lost]) is False
    assert await store.load_counters() == {"enqueued": 3.0}
    assert (await store.list_tasks(TaskQuery()))[1] == 3
    # With no counters of its own, a later write does not bring the dropped ones back.
    with pytest.raises(StoreError):
        await within(store.set_flag("queue_paused", "1"))

    filler.unlink()  # space returns: the same store writes again, nothing restarted
    await within(store.save([lost[0]]))
    await within(store.save([], {"enqueued": 4.0}))
    assert any("written again" in line for line in errors_logged)
    assert await store.get(lost[0].id) == lost[0]
    assert await store.load_counters() == {"enqueued": 4.0}

    await store.close()
    await store.open()  # and the file is sound
    assert {t.id for t in await store.load_unfinished()} == {t.id for t in [*before, lost[0]]}
    assert await store.get_flag("queue_paused") is None


async def test_a_delete_on_a_full_disk_fails_with_disk_space(
    store_on_disk: SqliteStore, disk: Path
) -> None:
    store = store_on_disk
    await store.save([_task(n, TaskStatus.COMPLETED) for n in range(50)])
    filler = fill(disk)
    try:
        with pytest.raises(StoreError) as raised:
            await within(store.delete([TaskStatus.COMPLETED]))
        _assert_disk_space(raised.value, store.path.parent)
    finally:
        filler.unlink()
    assert await within(store.delete([TaskStatus.COMPLETED])) == 50


async def test_a_checkpoint_on_a_full_disk_is_logged_and_the_next_one_runs(
    store_on_disk: SqliteStore, disk: Path
) -> None:
    store = store_on_disk
    await store.save([_task(n) for n in range(300)])  # pages in the WAL, not yet in the file
    logged = threading.Event()
    sink = logger.add(
        lambda m: logged.set() if "checkpoint" in m.record["message"] else None, level="WARNING"
    )
    filler = fill(disk)
    try:
        assert store._checkpointer is not None
        store._checkpointer.put(True)
        assert await asyncio.to_thread(logged.wait, 15)
    finally:
        logger.remove(sink)
        filler.unlink()
    assert store._checkpointer is not None
    assert store._checkpointer.is_alive()  # it did not die with the error


async def test_an_io_error_is_a_full_disk_only_when_space_is_short(disk: Path) -> None:
    # SQLite reports a short write of the WAL or the shared memory as an I/O error.
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorcode = sqlite3.SQLITE_IOERR_WRITE
    assert not failures.is_disk_full(exc, disk)
    fill(disk)
    assert failures.is_disk_full(exc, disk)
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert not failures.is_disk_full(locked, disk)


async def test_opening_on_a_full_disk_says_so_in_one_line(disk: Path) -> None:
    fill(disk)
    with pytest.raises(StoreError) as raised:
        await SqliteStore(disk / "ai-admin.db").open()
    assert raised.value.code is ErrorCode.SYSTEM_DISK_SPACE
    assert "\n" not in raised.value.message
    assert f"cannot open the task database {disk / 'ai-admin.db'}" in raised.value.message


# -- counters --------------------------------------------------------------------------------------


async def test_counters_of_a_batch_with_a_failed_write_are_not_written(
    tmp_path: Path, writer: Writer
) -> None:
    # The counters given with a save count every write of its turn; if one of them failed,
    # they count something that is not stored, and the caller's next save brings new ones.
    store = SqliteStore(tmp_path / "s.db", writer=writer)
    await store.open()
    try:
        await store.save([_task(1)], {"enqueued": 1.0})
        bad = store._submit(lambda conn: conn.execute("SELECT * FROM no_such_table"))
        good = store.save([_task(2)], {"enqueued": 3.0})
        results = await within(asyncio.gather(bad, good, return_exceptions=True))
        assert isinstance(results[0], sqlite3.OperationalError)
        assert results[1] is None
        assert await store.load_counters() == {"enqueued": 1.0}
        await store.save([], {"enqueued": 2.0})
        assert await store.load_counters() == {"enqueued": 2.0}
    finally:
        await store.close()


# -- rows that do not load -------------------------------------------------------------------------


async def test_a_row_with_a_status_this_version_does_not_know_is_set_aside(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    await store.open()
    newer, known = _task(1), _task(2)
    await store.save([newer, known])
    await store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:  # as a newer version wrote it
        conn.execute("UPDATE tasks SET status = 'quarantined' WHERE id = ?", (newer.id,))

    await store.open()
    try:
        assert [t.id for t in await store.load_unfinished()] == [known.id]
        [aside] = await store.set_aside()
        assert aside.task_id == newer.id
        assert "'quarantined' is not one this version knows" in aside.reason
        assert sum((await store.class_counts()).values()) == 1
        _, total = await store.list_tasks(TaskQuery())
        assert total == 1
    finally:
        await store.close()
