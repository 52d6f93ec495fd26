"""Schedules on a real queue (SQLite store, the scheduler running, fake executors): firing,
merging into a live task, pausing, durability across a restart, missed firings coalescing
within the grace time, events, and concurrent actions ending consistent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from queue_helpers import Work, executors_for, make_settings, within

from ai_admin.errors import ErrorCode, InvalidParams, ScheduleNotFound
from ai_admin.python_api import TaskQueue
from ai_admin.queue.events import Change, ObjectEvent, Subject
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore
from ai_admin.queue.store import TaskQuery
from ai_admin.schedule.model import RECORD_KIND, ScheduleView
from ai_admin.schedule.retention import apply_retention


class QueueFactory(Protocol):
    def __call__(self, work: Work | None = None, **settings: Any) -> Awaitable[TaskQueue]: ...


@pytest.fixture
async def make_queue(tmp_path: Path) -> AsyncIterator[QueueFactory]:
    """Queues on ``tmp_path/q.db`` (the same database each time), started; all closed at
    teardown."""
    built: list[TaskQueue] = []

    async def make(work: Work | None = None, **settings: Any) -> TaskQueue:
        queue = TaskQueue(
            SqliteStore(tmp_path / "q.db"),
            executors_for(work or Work(block=False)),
            make_settings(tmp_path, **settings),
        )
        built.append(queue)
        await queue.start()
        return queue

    yield make
    for queue in built:
        await queue.close()


def pull(image: str = "team/app") -> DockerTask:
    return DockerTask(task_type=TaskType.PULL, params={"image_name": image, "tag": "1"})


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 - a read of the queue, polled
            await asyncio.sleep(0.05)


async def fired(queue: TaskQueue, schedule_id: str, runs: int) -> ScheduleView:
    async def enough() -> bool:
        return (await queue.get_schedule(schedule_id)).runs >= runs

    await until(enough)
    return await queue.get_schedule(schedule_id)


async def test_an_interval_schedule_submits_its_task_with_its_id(make_queue: QueueFactory) -> None:
    queue = await make_queue()
    made = await queue.schedule(pull(), name="every second", interval_s=1)
    assert made.next_run_at is not None
    assert made.runs == 0
    assert made.last_outcome is None

    view = await fired(queue, made.schedule_id, 2)
    assert view.last_task_id is not None
    task = await queue.wait_for(view.last_task_id, timeout_s=10)
    assert task.schedule_id == made.schedule_id
    assert task.params == {"image_name": "team/app", "tag": "1"}
    view = await queue.get_schedule(made.schedule_id)
    assert view.last_outcome is not None
    assert view.last_outcome.task_id == view.last_task_id
    assert view.last_outcome.status is TaskStatus.COMPLETED
    assert view.last_run_at is not None
    assert view.next_run_at is not None
    assert view.next_run_at > view.last_run_at


async def test_a_firing_while_the_last_task_runs_merges_into_it(make_queue: QueueFactory) -> None:
    work = Work(block=True)
    queue = await make_queue(work)
    made = await queue.schedule(pull(), name="slow", interval_s=1)
    first = await fired(queue, made.schedule_id, 1)
    assert first.last_task_id is not None
    await work.started(first.last_task_id)

    second = await fired(queue, made.schedule_id, 2)  # the first task is still running
    assert second.last_task_id != first.last_task_id
    assert second.last_outcome is not None
    assert second.last_outcome.status is TaskStatus.MERGED
    assert second.last_outcome.merged_into == first.last_task_id
    assert work.starts == [first.last_task_id]  # one run, however many firings
    stats = queue.scheduler.schedules.stats  # what /metrics shows
    assert (stats.outcomes["submitted"], stats.outcomes["merged"]) == (1, 1)
    assert stats.lateness.count == 2  # each firing's lateness observed once
    assert 0 <= stats.lateness.sum_s < 60  # measured from when each was due, not another time
    work.release()


async def test_a_paused_schedule_stops_firing_and_fires_again_when_resumed(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    made = await queue.schedule(pull(), name="pausable", interval_s=1)
    await fired(queue, made.schedule_id, 1)
    assert queue.scheduler.schedules.counts() == {"active": 1, "paused": 0, "done": 0}
    paused = await queue.pause_schedule(made.schedule_id)
    assert paused.paused
    assert paused.next_run_at is None
    assert queue.scheduler.schedules.counts() == {"active": 0, "paused": 1, "done": 0}
    assert (await queue.pause_schedule(made.schedule_id)).paused  # idempotent
    runs = paused.runs
    await asyncio.sleep(2.5)  # two and a half periods: no firing may come
    assert (await queue.get_schedule(made.schedule_id)).runs == runs

    resumed = await queue.resume_schedule(made.schedule_id)
    assert not resumed.paused
    assert resumed.next_run_at is not None
    await fired(queue, made.schedule_id, runs + 1)


async def test_schedules_and_their_firing_state_survive_a_restart(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    kept = await queue.schedule(pull("kept"), name="kept", interval_s=1)
    paused = await queue.schedule(pull("paused"), name="paused", cron="0 3 * * *")
    await queue.pause_schedule(paused.schedule_id)
    gone = await queue.schedule(pull("gone"), name="gone", interval_s=60)
    await queue.delete_schedule(gone.schedule_id)
    before = await fired(queue, kept.schedule_id, 2)
    await queue.close()

    again = await make_queue()
    views = {v.schedule_id: v for v in await again.list_schedules()}
    assert set(views) == {kept.schedule_id, paused.schedule_id}
    assert views[paused.schedule_id].paused
    assert views[kept.schedule_id].runs >= before.runs
    assert views[kept.schedule_id].last_task_id is not None
    await fired(again, kept.schedule_id, views[kept.schedule_id].runs + 1)  # and goes on


async def _stored(path: Path, schedule_id: str, **changes: Any) -> None:
    """Change a stored schedule as the agent left it (the agent being down)."""
    store = SqliteStore(path)
    await store.open()
    try:
        record = (await store.load_records(RECORD_KIND))[schedule_id]
        await store.save_record(RECORD_KIND, schedule_id, {**record, **changes})
    finally:
        await store.close()


async def test_firings_missed_while_down_coalesce_into_one(
    make_queue: QueueFactory, tmp_path: Path
) -> None:
    queue = await make_queue()
    made = await queue.schedule(pull(), name="minutely", interval_s=60)
    await queue.close()
    ten_missed = time.time() - 600  # ten firings ago
    await _stored(tmp_path / "q.db", made.schedule_id, next_run_at=ten_missed)

    again = await make_queue()
    view = await fired(again, made.schedule_id, 1)
    await asyncio.sleep(1.0)  # any other firing of the ten would have come by now
    view = await again.get_schedule(made.schedule_id)
    assert (view.runs, view.missed) == (1, 0)
    assert view.next_run_at is not None
    assert view.next_run_at > time.time()
    _, total = await again.list_tasks(TaskQuery())
    assert total == 1


async def test_a_firing_missed_beyond_the_grace_time_is_skipped_and_counted(
    make_queue: QueueFactory, tmp_path: Path
) -> None:
    queue = await make_queue(schedule_misfire_grace_s=60)
    later = "2099-01-01T00:00:00+00:00"
    late = await queue.schedule(pull("late"), name="two hours late", at=later)
    recent = await queue.schedule(pull("recent"), name="ten seconds late", at=later)
    await queue.close()
    await _stored(tmp_path / "q.db", late.schedule_id, next_run_at=time.time() - 7200)
    await _stored(tmp_path / "q.db", recent.schedule_id, next_run_at=time.time() - 10)

    again = await make_queue(schedule_misfire_grace_s=60)
    ran = await fired(again, recent.schedule_id, 1)
    assert ran.done
    assert ran.next_run_at is None

    async def counted() -> bool:
        return (await again.get_schedule(late.schedule_id)).missed == 1

    await until(counted)
    skipped = await again.get_schedule(late.schedule_id)
    assert (skipped.runs, skipped.done, skipped.next_run_at) == (0, True, None)
    assert again.scheduler.schedules.stats.missed == 1
    assert again.scheduler.schedules.counts() == {"active": 0, "paused": 0, "done": 2}
    assert skipped.last_task_id is None
    _, total = await again.list_tasks(TaskQuery())
    assert total == 1  # only the recent one ran


async def test_every_change_is_an_event_on_the_watch(make_queue: QueueFactory) -> None:
    queue = await make_queue()
    watch = queue.events.watch()
    task_only = queue.subscribe()
    made = await queue.schedule(pull(), name="watched", interval_s=1)
    view = await fired(queue, made.schedule_id, 1)
    await queue.pause_schedule(made.schedule_id)
    await queue.resume_schedule(made.schedule_id)
    await queue.delete_schedule(made.schedule_id)

    changes: list[ObjectEvent] = []
    while len(changes) < 5:
        event = await within(watch.next())
        if isinstance(event, ObjectEvent):
            changes.append(event)
    assert all(e.subject is Subject.SCHEDULE and e.subject_id == made.schedule_id for e in changes)
    names = [e.event for e in changes]
    assert names == [
        "schedule_created",
        "schedule_fired",
        "schedule_paused",
        "schedule_resumed",
        "schedule_deleted",
    ]
    assert changes[1].data["task_id"] == view.last_task_id
    assert changes[1].change is Change.FIRED
    # A task subscription never meets one.
    while task_only.waiting:
        assert not isinstance(await task_only.next(), ObjectEvent)
    watch.close()
    task_only.close()


async def test_concurrent_pause_resume_and_delete_end_consistent(
    make_queue: QueueFactory, tmp_path: Path
) -> None:
    queue = await make_queue()
    made = [await queue.schedule(pull(f"img{i}"), name=f"s{i}", interval_s=1) for i in range(5)]

    async def act(action: str, schedule_id: str) -> str:
        call = getattr(queue, f"{action}_schedule")
        try:
            await call(schedule_id)
        except ScheduleNotFound:
            return "gone"
        return action

    actions = ["pause", "resume", "pause", "delete", "resume", "pause"] * 4
    outcomes = await asyncio.gather(
        *(act(action, s.schedule_id) for s in made for action in actions)
    )
    per_schedule = len(actions)
    for i, _view in enumerate(made):
        done = outcomes[i * per_schedule : (i + 1) * per_schedule]
        assert done.count("delete") == 1  # one delete won; everything after it found nothing
        assert done[done.index("delete") + 1 :] == ["gone"] * (
            per_schedule - done.index("delete") - 1
        )
    assert await queue.list_schedules() == []
    assert queue.scheduler.schedule_jobs() == []
    await queue.close()
    again = await make_queue()
    assert await again.list_schedules() == []


async def test_concurrent_pauses_and_resumes_leave_store_memory_and_jobs_agreeing(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    made = await queue.schedule(pull(), name="contended", interval_s=1)
    sid = made.schedule_id
    calls = [queue.pause_schedule(sid) if i % 3 else queue.resume_schedule(sid) for i in range(60)]
    results = await asyncio.gather(*calls)
    last = results[-1]  # the actions ran in the order they were called
    assert last.paused is True  # 59 % 3 != 0: a pause was last
    view = await queue.get_schedule(sid)
    assert view.paused is True
    assert view.next_run_at is None
    assert queue.scheduler.schedule_jobs() == []
    await queue.close()
    again = await make_queue()
    assert (await again.get_schedule(sid)).paused is True


async def test_a_schedule_refuses_credentials_and_bad_triggers(make_queue: QueueFactory) -> None:
    queue = await make_queue()
    with_auth = DockerTask(
        task_type=TaskType.PULL,
        params={"image_name": "team/app", "auth": {"username": "u", "password": "secret-pw"}},
    )
    with pytest.raises(InvalidParams) as refused:
        await queue.schedule(with_auth, name="no", interval_s=60)
    assert "secret-pw" not in str(refused.value.to_dict())
    assert refused.value.details["errors"][0]["field"] == "params.command.params"
    for bad, field in [
        ({"cron": "61 * * * *"}, "params.cron"),
        ({"cron": "* * *"}, "params.cron"),
        ({"interval_s": 0.5}, "params.interval_s"),
        ({"at": "tomorrow"}, "params.at"),
        ({"cron": "0 3 * * *", "timezone": "Nowhere/City"}, "params.timezone"),
        ({}, "params.cron"),
    ]:
        with pytest.raises(InvalidParams) as info:
            await queue.schedule(pull(), name="bad", **bad)
        assert info.value.code is ErrorCode.VALIDATION_INVALID_PARAMS
        assert info.value.details["errors"][0]["field"] == field, bad
    assert await queue.list_schedules() == []
    with pytest.raises(ScheduleNotFound):
        await queue.get_schedule("sch-missing")


async def test_retention_deletes_old_and_surplus_finished_tasks_never_live_ones(
    make_queue: QueueFactory,
) -> None:
    work = Work(block=True)
    queue = await make_queue(
        work, retention_max_age_s=None, retention_max_finished=3, max_concurrent=1
    )
    done = [await queue.add_task(pull(f"done{i}")) for i in range(6)]
    for task_id in done:
        work.release(task_id)
        await queue.wait_for(task_id, timeout_s=10)
    running = await queue.add_task(pull("running"))
    waiting = await queue.add_task(pull("waiting"))
    await work.started(running)

    result = await queue.apply_retention()
    assert result.deleted == 3
    left = {t.id for t in (await queue.list_tasks(TaskQuery(limit=100)))[0]}
    assert left == {*done[3:], running, waiting}  # the newest finished, and every live one
    stats = await queue.get_queue_stats()
    assert stats["summary"]["total_tasks"] == 5  # the statistics count what is stored

    # By age, from a day ahead: every finished task is old, the live ones stay.
    settings = queue.settings.model_copy(update={"retention_max_age_s": 3600.0})

    aged = await apply_retention(queue, queue._store, settings, now_s=time.time() + 86_400)
    assert aged.deleted == 3
    assert {t.id for t in (await queue.list_tasks(TaskQuery(limit=100)))[0]} == {running, waiting}
    assert (await queue.get_queue_stats())["summary"]["total_tasks"] == 2
    work.release()
