"""The ``QueueStore`` contract: every backend passes ``StoreContract`` (huey-style: the tests live
in a base class; each backend's subclass provides ``make_store``). SQLite-only checks follow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from queue_helpers import within

from ai_admin.config import Settings
from ai_admin.errors import StoreError
from ai_admin.python_api import TaskQueue
from ai_admin.queue import sqlite_writer
from ai_admin.queue.models import DockerTask, ErrorInfo, TaskPriority, TaskStatus, TaskType
from ai_admin.queue.sqlite_queries import row
from ai_admin.queue.sqlite_schema import Synchronous
from ai_admin.queue.sqlite_store import SqliteStore, Writer
from ai_admin.queue.stats import TaskClass
from ai_admin.queue.store import QueueStore, TaskQuery

S = TaskStatus
P = TaskPriority
StoreFactory = Callable[[], Awaitable[QueueStore]]
# Replace a stored task's document behind the store's back (a damaged row, an older version).
Damage = Callable[[str, str], None]
CANARY = "canary-Zq81-stored-value"


def _task(
    seq: int,
    status: TaskStatus = S.PENDING,
    *,
    task_type: TaskType = TaskType.PULL,
    priority: TaskPriority = P.NORMAL,
    created_at: float | None = None,
    **fields: object,
) -> DockerTask:
    task = DockerTask(
        task_type=task_type,
        params={"image_name": f"img{seq}"},
        status=status,
        priority=priority,
        seq=seq,
        max_retries=3,
        **fields,  # type: ignore[arg-type]
    )
    task.created_at = created_at if created_at is not None else 1_700_000_000.0 + seq
    return task


class StoreContract:
    """Subclasses provide a ``make_store`` fixture: a factory opening the same database each
    call (so a test can close a store and open it again); the fixture closes what it opened;
    and a ``damage`` fixture that overwrites a stored task's document with raw text."""

    async def test_a_saved_task_reads_back_whole(self, make_store: StoreFactory) -> None:
        store = await make_store()
        task = _task(
            1,
            S.FAILED,
            priority=P.HIGH,
            error="denied",
            error_code="DOCKER_AUTHENTICATION_FAILED",
            error_details={"registry": "r.local"},
            error_info=ErrorInfo(description="d", suggestions=["s1", "s2"]),
            result={"digest": "sha256:abc"},
            logs=["one", "two"],
            retry_count=2,
            timeout_s=12.5,
        )
        await store.save([task])
        assert await store.get(task.id) == task
        assert await store.get("missing") is None

    async def test_statuses_of_many_tasks_read_at_once(self, make_store: StoreFactory) -> None:
        store = await make_store()
        tasks = [_task(i, (S.COMPLETED, S.FAILED, S.PENDING)[i % 3]) for i in range(1, 1201)]
        await store.save(tasks)
        found = await store.statuses([*(t.id for t in tasks), "missing"])
        assert found == {t.id: t.status for t in tasks}  # more ids than one read binds
        assert await store.statuses([]) == {}

    async def test_save_replaces_in_place_and_later_saves_win(
        self, make_store: StoreFactory
    ) -> None:
        store = await make_store()
        task = _task(1)
        first = store.save([task])
        task.status = S.RUNNING
        task.progress = 40.0
        second = store.save([task])  # issued before the first is awaited
        await asyncio.gather(first, second)
        stored = await store.get(task.id)
        assert stored is not None
        assert (stored.status, stored.progress) == (S.RUNNING, 40.0)
        _, total = await store.list_tasks(TaskQuery())
        assert total == 1

    async def test_save_takes_the_state_at_call_time(self, make_store: StoreFactory) -> None:
        store = await make_store()
        task = _task(1)
        write = store.save([task])
        task.status = S.COMPLETED  # changed after save() returned, not saved again
        await write
        stored = await store.get(task.id)
        assert stored is not None
        assert stored.status is S.PENDING

    async def test_saved_tasks_and_counters_survive_reopening(
        self, make_store: StoreFactory
    ) -> None:
        store = await make_store()
        tasks = [_task(i) for i in range(1, 4)]
        await store.save(tasks, {"enqueued": 3.0, "wait_s_total": 1.25})
        await store.save([], {"enqueued": 4.0, "wait_s_total": 1.5})
        await store.close()

        reopened = await make_store()
        for task in tasks:
            assert await reopened.get(task.id) == task
        assert await reopened.load_counters() == {"enqueued": 4.0, "wait_s_total": 1.5}

    async def test_many_concurrent_saves_are_all_durable(self, make_store: StoreFactory) -> None:
        store = await make_store()
        tasks = [_task(i) for i in range(1, 501)]
        await within(asyncio.gather(*(store.save([t]) for t in tasks)))
        await store.close()

        reopened = await make_store()
        _, total = await reopened.list_tasks(TaskQuery(limit=1))
        assert total == 500
        assert [t.id for t in await reopened.load_unfinished()] == [t.id for t in tasks]

    async def test_list_tasks_pages_newest_first(self, make_store: StoreFactory) -> None:
        store = await make_store()
        tasks = [_task(i) for i in range(1, 8)]
        await store.save(tasks)

        page, total = await store.list_tasks(TaskQuery(limit=3))
        assert total == 7
        assert [t.seq for t in page] == [7, 6, 5]
        page, total = await store.list_tasks(TaskQuery(offset=3, limit=3))
        assert [t.seq for t in page] == [4, 3, 2]
        page, _ = await store.list_tasks(TaskQuery(offset=6, limit=3))
        assert [t.seq for t in page] == [1]
        page, _ = await store.list_tasks(TaskQuery(offset=10))
        assert page == []
        page, _ = await store.list_tasks(TaskQuery(newest_first=False, limit=2))
        assert [t.seq for t in page] == [1, 2]

    async def test_list_tasks_filters_by_status_type_and_queue(
        self, make_store: StoreFactory
    ) -> None:
        store = await make_store()
        await store.save(
            [
                _task(1, S.COMPLETED, task_type=TaskType.BUILD),
                _task(2, S.FAILED, task_type=TaskType.PUSH),
                _task(3, S.FAILED, task_type=TaskType.BUILD),
                _task(4, S.PENDING, task_type=TaskType.BUILD, queue="nightly"),
            ]
        )

        async def seqs(query: TaskQuery) -> tuple[list[int], int]:
            page, total = await store.list_tasks(query)
            return sorted(t.seq for t in page), total

        assert await seqs(TaskQuery(status=[S.FAILED])) == ([2, 3], 2)
        assert await seqs(TaskQuery(status=[S.FAILED, S.COMPLETED])) == ([1, 2, 3], 3)
        assert await seqs(TaskQuery(task_type=TaskType.BUILD)) == ([1, 3, 4], 3)
        assert await seqs(TaskQuery(status=[S.FAILED], task_type=TaskType.BUILD)) == ([3], 1)
        assert await seqs(TaskQuery(queue="nightly")) == ([4], 1)
        assert await seqs(TaskQuery(queue="default", status=[S.PENDING])) == ([], 0)

    async def test_load_unfinished_returns_live_tasks_in_run_order(
        self, make_store: StoreFactory
    ) -> None:
        store = await make_store()
        await store.save(
            [
                _task(5, S.PENDING, priority=P.LOW),
                _task(1, S.COMPLETED, priority=P.CRITICAL),
                _task(4, S.PAUSED, priority=P.CRITICAL),
                _task(2, S.RUNNING, priority=P.NORMAL),
                _task(6, S.BUILDING, priority=P.CRITICAL),
                _task(3, S.PENDING, priority=P.NORMAL),
                _task(7, S.MERGED),
                _task(8, S.CANCELLED),
                _task(9, S.TIMEOUT),
                _task(10, S.FAILED),
            ]
        )
        unfinished = await store.load_unfinished()
        assert [t.seq for t in unfinished] == [4, 6, 2, 3, 5]

    async def test_delete_removes_the_given_statuses_and_counts_them(
        self, make_store: StoreFactory
    ) -> None:
        store = await make_store()
        tasks = [_task(1, S.COMPLETED), _task(2, S.COMPLETED), _task(3, S.FAILED), _task(4)]
        await store.save(tasks)
        assert await store.delete([S.COMPLETED]) == 2
        assert await store.delete([S.COMPLETED]) == 0
        assert await store.delete([]) == 0
        assert await store.get(tasks[0].id) is None
        assert await store.get(tasks[2].id) is not None
        assert await store.delete([S.FAILED, S.PENDING]) == 2
        assert await store.list_tasks(TaskQuery()) == ([], 0)

    async def test_class_counts_group_tasks_like_the_stats(self, make_store: StoreFactory) -> None:
        store = await make_store()
        tasks = [
            _task(1, S.COMPLETED),
            _task(2, S.COMPLETED),
            _task(3, S.FAILED, error_code="DOCKER_NETWORK_ERROR", retry_count=3),
            _task(4, S.TIMEOUT, task_type=TaskType.BUILD, error_code="SYSTEM_TIMEOUT"),
            _task(5, S.PENDING, retry_count=1, error_code="DOCKER_NETWORK_ERROR"),
        ]
        await store.save(tasks)
        expected: dict[TaskClass, int] = {}
        for task in tasks:
            cls = TaskClass.of(task)
            expected[cls] = expected.get(cls, 0) + 1
        assert await store.class_counts() == expected
        # A pending task's last error is not an error outcome.
        assert TaskClass.of(tasks[4]).error_code is None

    async def test_created_since_counts_per_minute(self, make_store: StoreFactory) -> None:
        store = await make_store()
        minute = 1_700_000_040.0  # a minute boundary
        await store.save(
            [
                _task(1, created_at=minute - 30),
                _task(2, created_at=minute + 1),
                _task(3, created_at=minute + 59),
                _task(4, created_at=minute + 61),
            ]
        )
        assert sorted(await store.created_since(minute)) == [(minute, 2), (minute + 60, 1)]
        assert await store.created_since(minute + 120) == []

    async def test_no_counters_before_any_are_saved(self, make_store: StoreFactory) -> None:
        store = await make_store()
        assert await store.load_counters() == {}

    async def test_flags_survive_reopening_and_can_be_removed(
        self, make_store: StoreFactory
    ) -> None:
        store = await make_store()
        assert await store.get_flag("queue_paused") is None
        await store.set_flag("queue_paused", "1")
        await store.close()
        store = await make_store()
        assert await store.get_flag("queue_paused") == "1"
        await store.set_flag("queue_paused", None)
        assert await store.get_flag("queue_paused") is None

    async def test_nothing_is_set_aside_in_a_sound_store(self, make_store: StoreFactory) -> None:
        store = await make_store()
        await store.save([_task(1), _task(2, S.COMPLETED)])
        assert await store.set_aside() == []

    async def test_unfinished_tasks_that_fail_to_load_are_set_aside_and_the_rest_load(
        self, make_store: StoreFactory, damage: Damage
    ) -> None:
        # Regression: one malformed row of an unfinished task stopped the agent from starting.
        store = await make_store()
        good, broken, unknown = _task(1), _task(2), _task(3, S.PAUSED)
        await store.save([good, broken, unknown])
        await store.close()
        damage(broken.id, '{"id": "not json')
        doc = unknown.model_dump(mode="json", exclude_none=True)
        damage(unknown.id, json.dumps({**doc, "status": CANARY}))

        store = await make_store()
        assert [t.id for t in await store.load_unfinished()] == [good.id]
        aside = {a.task_id: a for a in await store.set_aside()}
        assert set(aside) == {broken.id, unknown.id}
        assert "Invalid JSON" in aside[broken.id].reason
        assert aside[unknown.id].reason.startswith("status:")
        assert CANARY not in aside[unknown.id].reason  # where and what, never the value
        assert all(a.set_aside_at > 1_700_000_000 for a in aside.values())
        # Counted nowhere, found nowhere, and still apart after another restart.
        assert await store.class_counts() == {TaskClass.of(good): 1}
        assert await store.get(broken.id) is None
        assert await store.list_tasks(TaskQuery()) == ([good], 1)
        await store.close()
        store = await make_store()
        assert [t.id for t in await store.load_unfinished()] == [good.id]
        assert {a.task_id for a in await store.set_aside()} == {broken.id, unknown.id}

    async def test_reads_skip_a_finished_task_that_fails_to_load_and_set_it_aside(
        self, make_store: StoreFactory, damage: Damage
    ) -> None:
        store = await make_store()
        done, broken = _task(1, S.COMPLETED), _task(2, S.FAILED)
        await store.save([done, broken])
        damage(broken.id, "[]")
        assert await store.list_tasks(TaskQuery()) == ([done], 1)
        assert await store.get(broken.id) is None
        await store.save([])  # writes land in call order: the move aside is done
        assert [a.task_id for a in await store.set_aside()] == [broken.id]
        assert await store.list_tasks(TaskQuery()) == ([done], 1)

    # -- records, snapshots, retention -----------------------------------------------------------

    async def test_records_are_kept_by_kind_and_id_and_survive_reopening(
        self, make_store: StoreFactory
    ) -> None:
        store = await make_store()
        await store.save_record("schedule", "a", {"name": "nightly", "n": 1})
        await store.save_record("schedule", "b", {"name": "hourly"})
        await store.save_record("batch", "a", {"tasks": ["t1", "t2"]})
        await store.save_record("schedule", "a", {"name": "nightly", "n": 2})  # replaced
        await store.close()

        reopened = await make_store()
        assert await reopened.load_records("schedule") == {
            "a": {"name": "nightly", "n": 2},
            "b": {"name": "hourly"},
        }
        assert await reopened.load_records("batch") == {"a": {"tasks": ["t1", "t2"]}}
        assert await reopened.load_records("queue") == {}
        await reopened.save_record("schedule", "a", None)  # deleted
        await reopened.save_record("schedule", "gone", None)  # deleting nothing is no error
        assert list(await reopened.load_records("schedule")) == ["b"]

    async def test_a_record_is_taken_at_call_time_and_lands_in_order_with_tasks(
        self, make_store: StoreFactory
    ) -> None:
        store = await make_store()
        doc = {"last_task_id": None}
        task = _task(1)
        writes = [store.save([task]), store.save_record("schedule", "s", doc)]
        doc["last_task_id"] = "changed after the call"
        writes.append(store.save_record("schedule", "s", {"last_task_id": task.id}))
        writes.append(store.save_record("schedule", "t", {"n": 1}))
        writes.append(store.save_record("schedule", "t", None))  # issued last: wins
        # Not awaited: a read issued after them sees them all.
        assert await store.load_records("schedule") == {"s": {"last_task_id": task.id}}
        await asyncio.gather(*writes)
        assert await store.get(task.id) == task

    async def test_snapshots_read_back_from_a_time_and_are_pruned(
        self, make_store: StoreFactory
    ) -> None:
        store = await make_store()
        for at in (100.0, 400.0, 700.0):
            await store.add_snapshot(at, {"completed": at / 100})
        await store.add_snapshot(400.0, {"completed": 44})  # the same instant: replaced
        assert await store.snapshots(400.0) == [
            (400.0, {"completed": 44}),
            (700.0, {"completed": 7}),
        ]
        assert await store.delete_snapshots(700.0) == 2
        await store.close()
        reopened = await make_store()
        assert await reopened.snapshots(0.0) == [(700.0, {"completed": 7})]

    async def test_delete_finished_by_age_counts_from_the_end_and_spares_live_tasks(
        self, make_store: StoreFactory
    ) -> None:
        store = await make_store()
        old_end = _task(1, S.COMPLETED, created_at=1_000.0, completed_at=1_500.0)
        late_end = _task(2, S.FAILED, created_at=1_000.0, completed_at=5_000.0)
        never_ran = _task(3, S.CANCELLED, created_at=1_200.0)  # no completed_at: its creation
        old_live = [_task(4, S.PENDING, created_at=10.0), _task(5, S.RUNNING, created_at=10.0)]
        old_paused = _task(6, S.PAUSED, created_at=10.0)
        recent = _task(7, S.COMPLETED, created_at=9_000.0, completed_at=9_001.0)
        everything = [old_end, late_end, never_ran, *old_live, old_paused, recent]
        await store.save(everything)

        assert await store.delete_finished(ended_before_s=2_000.0) == 2
        left = {t.id for t in (await store.list_tasks(TaskQuery(limit=100)))[0]}
        assert left == {late_end.id, *(t.id for t in old_live), old_paused.id, recent.id}
        assert sum((await store.class_counts()).values()) == 5

    async def test_delete_finished_by_count_keeps_the_newest_finished(
        self, make_store: StoreFactory
    ) -> None:
        store = await make_store()
        finished = [_task(i, S.COMPLETED if i % 2 else S.MERGED) for i in range(1, 11)]
        live = [_task(i, S.PENDING) for i in range(11, 14)]
        live[0].created_at = 0.0  # older than every finished one: still kept
        await store.save([*finished, *live])

        assert await store.delete_finished(keep_newest=4) == 6
        left = {t.id for t in (await store.list_tasks(TaskQuery(limit=100)))[0]}
        assert left == {t.id for t in finished[-4:]} | {t.id for t in live}
        assert await store.delete_finished(keep_newest=4) == 0
        assert await store.delete_finished(ended_before_s=None, keep_newest=None) == 0


@pytest.fixture(params=["loop", "thread"])
def writer(request: pytest.FixtureRequest) -> Writer:
    """Where the store commits: every SQLite test runs with each."""
    mode: Writer = request.param
    return mode


class TestSqliteStore(StoreContract):
    @pytest.fixture
    async def make_store(self, tmp_path: Path, writer: Writer) -> AsyncIterator[StoreFactory]:
        opened: list[SqliteStore] = []

        async def make() -> QueueStore:
            store = SqliteStore(tmp_path / "store.db", writer=writer)
            await store.open()
            opened.append(store)
            return store

        yield make
        for store in opened:
            await store.close()

    @pytest.fixture
    def damage(self, tmp_path: Path) -> Damage:
        def overwrite(task_id: str, doc: str) -> None:
            with contextlib.closing(sqlite3.connect(tmp_path / "store.db")) as conn, conn:
                conn.execute("UPDATE tasks SET doc = ? WHERE id = ?", (doc, task_id))

        return overwrite


# -- SQLite only ---------------------------------------------------------------------------------


async def test_sqlite_uses_wal_and_groups_concurrent_saves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: Writer
) -> None:
    transactions: list[int] = []
    original = sqlite_writer.transaction

    def counting(conn: sqlite3.Connection, jobs: list) -> list:  # type: ignore[type-arg]
        transactions.append(len(jobs))
        return original(conn, jobs)

    monkeypatch.setattr(sqlite_writer, "transaction", counting)
    store = SqliteStore(tmp_path / "wal.db", writer=writer)
    await store.open()
    try:
        await within(asyncio.gather(*(store.save([_task(i)]) for i in range(300))))
    finally:
        await store.close()
    assert sum(transactions) == 300
    assert len(transactions) < 300  # saves that arrive together share a commit
    with sqlite3.connect(tmp_path / "wal.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 300


async def test_a_failing_job_fails_alone(tmp_path: Path, writer: Writer) -> None:
    store = SqliteStore(tmp_path / "s.db", writer=writer)
    await store.open()
    try:
        good = store.save([_task(1)])
        bad = store._submit(lambda conn: conn.execute("SELECT * FROM no_such_table"))
        also_good = store.save([_task(2)])
        results = await within(asyncio.gather(good, bad, also_good, return_exceptions=True))
        assert results[0] is None
        assert isinstance(results[1], sqlite3.OperationalError)
        assert results[2] is None
        _, total = await store.list_tasks(TaskQuery())
        assert total == 2
    finally:
        await store.close()


async def test_a_save_after_close_fails_instead_of_hanging(tmp_path: Path, writer: Writer) -> None:
    # Regression: a save issued while close() was finishing was queued behind the stop marker
    # and never settled, so its caller waited forever.
    store = SqliteStore(tmp_path / "s.db", writer=writer)
    await store.open()
    await store.save([_task(1)])
    closing = asyncio.create_task(store.close())
    await asyncio.sleep(0)  # one loop turn: close() has begun
    with pytest.raises(RuntimeError, match="not open"):
        await within(store.save([_task(2)]), 5)
    await within(closing)
    with pytest.raises(RuntimeError, match="not open"):
        store.save([_task(3)])

    reopened = SqliteStore(tmp_path / "s.db", writer=writer)
    await reopened.open()
    try:
        assert (await reopened.list_tasks(TaskQuery()))[1] == 1
    finally:
        await reopened.close()


@pytest.fixture
async def store(tmp_path: Path, writer: Writer) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "s.db", writer=writer)
    await opened.open()
    yield opened
    await opened.close()


async def test_clearing_a_long_history_lets_other_work_through(store: SqliteStore) -> None:
    # Writes run on the event loop, so one DELETE of a whole history would hold up every submit
    # (and every other request) until it finished; deletes go in chunks with commits between.
    history = [_task(i, S.COMPLETED) for i in range(5_000)]
    await store.save(history)
    clearing = asyncio.ensure_future(store.delete([S.COMPLETED]))

    async def first_chunk_gone() -> None:
        # Polled turn by turn: there is no event for "a chunk was committed".
        while await store.get(history[0].id) is not None:  # noqa: ASYNC110
            await asyncio.sleep(0)

    await within(first_chunk_gone())
    assert await store.get(history[-1].id) is not None  # the rest waits for later commits
    await within(store.save([_task(9_999)]))
    assert not clearing.done()  # a new task got in while the history was being cleared
    assert await within(clearing) == 5_000
    _, total = await store.list_tasks(TaskQuery())
    assert total == 1


async def test_reads_of_one_task_see_every_commit_before_them(store: SqliteStore) -> None:
    # Point reads share the loop's connection; scans use another on a thread. Both see a write
    # as soon as the save that made it has returned.
    task = _task(1)
    for status in (S.RUNNING, S.DOWNLOADING, S.COMPLETED):
        task.status = status
        await store.save([task])
        stored = await store.get(task.id)
        assert stored is not None
        assert stored.status is status
        listed, _ = await store.list_tasks(TaskQuery())
        assert [t.status for t in listed] == [status]


async def test_a_write_lock_held_elsewhere_does_not_freeze_the_loop(store: SqliteStore) -> None:
    # Another process (the sqlite3 shell, a backup tool) holds the write lock. The save waits
    # for it without blocking the event loop, and lands once the lock is released.
    outside = sqlite3.connect(store.path, isolation_level=None)
    outside.execute("BEGIN IMMEDIATE")
    try:
        task = _task(1)
        saving = store.save([task])
        await asyncio.sleep(0.3)  # the loop runs meanwhile
        assert not saving.done()
        assert await store.get("elsewhere") is None  # and point reads are answered
    finally:
        outside.execute("ROLLBACK")
        outside.close()
    await within(saving)
    assert await store.get(task.id) == task


async def test_a_save_fails_once_the_lock_is_held_past_the_busy_timeout(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ai_admin.queue.sqlite_schema.BUSY_TIMEOUT_S", 0.2)
    outside = sqlite3.connect(store.path, isolation_level=None)
    outside.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await within(store.save([_task(1)]))
    finally:
        outside.execute("ROLLBACK")
        outside.close()
    later = _task(2)
    await within(store.save([later]))  # and the store works again
    assert await store.get(later.id) == later


async def test_counters_that_could_not_be_written_go_with_the_next_commit(
    store: SqliteStore,
) -> None:
    outside = sqlite3.connect(store.path, isolation_level=None)
    outside.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON counters BEGIN SELECT RAISE(ABORT, 'no'); END"
    )
    try:
        await within(store.save([_task(1)], {"completed": 2.0}))  # the task itself is stored
    finally:
        outside.execute("DROP TRIGGER refuse")
        outside.close()
    await within(store.save([_task(2)]))
    assert await store.load_counters() == {"completed": 2.0}


def _wipe(directory: Path, pattern: str) -> None:
    for leftover in directory.glob(pattern):
        leftover.unlink()


async def test_counters_are_written_again_after_reopening_onto_a_new_file(
    tmp_path: Path, writer: Writer
) -> None:
    store = SqliteStore(tmp_path / "s.db", writer=writer)
    await store.open()
    await store.save([_task(1)], {"completed": 1.0})
    await store.close()
    _wipe(tmp_path, "s.db*")  # a wiped data directory
    await store.open()
    try:
        await store.save([_task(2)], {"completed": 1.0})
        assert await store.load_counters() == {"completed": 1.0}
    finally:
        await store.close()


async def test_a_store_is_open_only_once_open_has_succeeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: Writer
) -> None:
    # A save issued while open() was still starting its threads used to be queued on a store
    # that then failed to open, and left every later save on it waiting forever.
    store = SqliteStore(tmp_path / "s.db", writer=writer)

    def slow_and_failing() -> sqlite3.Connection:
        time.sleep(0.1)
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(store, "_connect_reader", slow_and_failing)
    opening = asyncio.ensure_future(store.open())
    await asyncio.sleep(0.02)  # open() is waiting for its reader thread
    with pytest.raises(RuntimeError, match="not open"):
        store.save([_task(1)])
    with pytest.raises(StoreError, match="cannot open the task database"):
        await within(opening)

    monkeypatch.undo()
    await store.open()
    try:
        task = _task(1)
        await within(store.save([task]))
        assert await store.get(task.id) == task
    finally:
        await store.close()


async def test_a_writer_thread_commits_off_the_loop_while_the_next_batch_gathers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # writer="thread": a slow commit (an fsync with synchronous=FULL) holds the writer thread,
    # not the loop; what is saved meanwhile waits, and goes in the next commit, all together.
    commits: list[tuple[str, int]] = []
    original = sqlite_writer.transaction

    def slow(conn: sqlite3.Connection, jobs: list) -> list:  # type: ignore[type-arg]
        commits.append((threading.current_thread().name, len(jobs)))
        time.sleep(0.3)
        return original(conn, jobs)

    store = SqliteStore(tmp_path / "s.db", synchronous="FULL", writer="thread")
    await store.open()
    monkeypatch.setattr(sqlite_writer, "transaction", slow)
    try:
        first = store.save([_task(0)])
        await asyncio.sleep(0.1)  # the first commit is being made meanwhile, on the thread
        assert not first.done()
        later = [store.save([_task(i)]) for i in range(1, 51)]
        await within(asyncio.gather(first, *later))
    finally:
        monkeypatch.undo()
        await store.close()
    assert commits == [("ai-admin-sqlite-write", 1), ("ai-admin-sqlite-write", 50)]


def _committing_threads(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The names of the threads that commit from now on (filled in as commits are made)."""
    threads: set[str] = set()
    original = sqlite_writer.transaction

    def recording(conn: sqlite3.Connection, jobs: list) -> list:  # type: ignore[type-arg]
        threads.add(threading.current_thread().name)
        return original(conn, jobs)

    monkeypatch.setattr(sqlite_writer, "transaction", recording)
    return threads


@pytest.mark.parametrize(
    ("synchronous", "committer"), [("NORMAL", "MainThread"), ("FULL", "ai-admin-sqlite-write")]
)
async def test_by_default_commits_with_an_fsync_go_to_the_writer_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synchronous: Synchronous, committer: str
) -> None:
    # The measured choice (bench/queue_throughput.py): with FULL a commit's fsync would hold
    # the loop, and a writer thread serves more tasks; with NORMAL the loop commits.
    threads = _committing_threads(monkeypatch)
    store = SqliteStore(tmp_path / "s.db", synchronous=synchronous)
    await store.open()
    try:
        await within(store.save([_task(1)]))
    finally:
        await store.close()
    assert threads == {committer}


@pytest.mark.parametrize(
    ("setting", "committer"), [("normal", "MainThread"), ("full", "ai-admin-sqlite-write")]
)
async def test_the_agents_db_synchronous_setting_chooses_the_stores_durability(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, committer: str
) -> None:
    """``db_synchronous = "full"`` in the configuration reaches the store the Python API (and
    so the agent) opens: its commits go to the writer thread that makes them with an fsync."""
    threads = _committing_threads(monkeypatch)
    settings = Settings(data_dir=tmp_path, db_synchronous=setting)  # type: ignore[arg-type]
    async with TaskQueue(settings=settings, executors={}) as queue:
        await within(queue.submit(_task(1)))
    assert threads == {committer}


# -- SQLite: space given back ------------------------------------------------------------------


def _pragma(path: Path, name: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


async def _history(store: SqliteStore, n: int) -> list[DockerTask]:
    tasks = [_task(i, S.COMPLETED, logs=["x" * 2_000]) for i in range(1, n + 1)]
    for start in range(0, n, 1_000):
        await store.save(tasks[start : start + 1_000])
    return tasks


async def test_deleted_history_is_given_back_to_the_file_system(
    tmp_path: Path, writer: Writer
) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path, writer=writer)
    await store.open()
    try:
        assert _pragma(path, "auto_vacuum") == 2  # INCREMENTAL from its creation
        await _history(store, 3_000)
        await store.save([])
        full_pages = _pragma(path, "page_count")
        assert await store.delete_finished(keep_newest=100) == 2_900
        freed = await store.reclaim_space()
        assert _pragma(path, "freelist_count") == 0
        assert _pragma(path, "page_count") < full_pages / 5
        assert freed >= (full_pages * 4 // 5) * 4_096 - 4_096 * 50
        assert await store.reclaim_space() == 0  # nothing more to give back
        assert len((await store.list_tasks(TaskQuery(limit=1_000)))[0]) == 100
    finally:
        await store.close()
    # Once the WAL is checkpointed into it, the file itself is smaller.
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert path.stat().st_size < full_pages * 4_096 / 5


def _old_database(path: Path) -> None:
    """A database as the first schema version made it: no auto_vacuum, no records table."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(
            """
            CREATE TABLE tasks (
                id TEXT PRIMARY KEY, seq INTEGER NOT NULL, queue TEXT NOT NULL,
                task_type TEXT NOT NULL, status TEXT NOT NULL, finished INTEGER NOT NULL,
                priority INTEGER NOT NULL, created_at REAL NOT NULL, error_code TEXT,
                retry_count INTEGER NOT NULL, max_retries INTEGER NOT NULL, doc TEXT NOT NULL
            );
            CREATE TABLE counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '1');
            """
        )
        conn.execute(
            "INSERT INTO tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row(_task(1, S.COMPLETED))
        )


async def test_an_older_database_opens_converted_with_its_tasks(
    tmp_path: Path, writer: Writer
) -> None:
    path = tmp_path / "store.db"
    _old_database(path)
    assert _pragma(path, "auto_vacuum") == 0
    store = SqliteStore(path, writer=writer)
    await store.open()
    try:
        assert _pragma(path, "auto_vacuum") == 2
        assert (await store.list_tasks(TaskQuery()))[1] == 1
        await store.save_record("schedule", "s", {"n": 1})
        assert await store.load_records("schedule") == {"s": {"n": 1}}
    finally:
        await store.close()
