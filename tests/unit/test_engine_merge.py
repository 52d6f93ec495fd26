"""Duplicate folding: an identical submission while the first is live is recorded as merged."""

from __future__ import annotations

from pathlib import Path

import pytest
from queue_helpers import EngineFactory, Work, make_task, within

from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.store import TaskQuery


def push(tag: str = "latest", **params: object) -> DockerTask:
    return DockerTask(
        task_type=TaskType.PUSH, params={"image_name": "team/app", "tag": tag, **params}
    )


@pytest.mark.parametrize("first_is", ["pending", "running"])
async def test_an_identical_submission_is_merged_into_the_live_task(
    make_engine: EngineFactory, first_is: str
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    if first_is == "pending":
        blocker = await engine.add_task(make_task("blocker"))
        await work.started(blocker)
    first = await engine.submit(push())
    if first_is == "running":
        await work.started(first.task_id)

    # Same params in another key order: still the same work.
    twin = await engine.submit(
        DockerTask(task_type=TaskType.PUSH, params={"tag": "latest", "image_name": "team/app"})
    )

    assert twin.status is TaskStatus.MERGED
    assert twin.merged_into == first.task_id
    assert twin.task_id != first.task_id
    assert twin.queue_position == (1 if first_is == "pending" else None)
    merged = await engine.require_task(twin.task_id)
    assert merged.status is TaskStatus.MERGED
    assert merged.merged_into == first.task_id
    assert merged.public_dict()["merged_into"] == first.task_id
    # The second submission did not queue any work of its own.
    assert [t.id for t in engine.pending_tasks() + engine.running_tasks()].count(twin.task_id) == 0

    waiting = engine.wait_for(twin.task_id)
    work.release()
    done = await within(waiting)
    assert done.id == first.task_id
    assert done.status is TaskStatus.COMPLETED
    assert work.starts.count(first.task_id) == 1
    assert twin.task_id not in work.starts
    assert (await within(engine.wait_for(twin.task_id))).id == first.task_id
    stats = await engine.get_queue_stats()
    assert stats["counters"]["merged"] == 1
    assert stats["distributions"]["status"]["merged"] == 1


async def test_add_task_returns_the_merged_submissions_own_id(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work)
    first = await engine.add_task(push())
    second = await engine.add_task(push())
    assert second != first
    assert (await engine.require_task(second)).merged_into == first


async def test_different_params_type_or_credentials_are_not_merged(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=1)
    engine.pause_queue()
    alice = {"username": "alice", "password": "one"}
    submissions = [
        await engine.submit(push(auth=alice)),
        await engine.submit(push(auth={"username": "alice", "password": "two"})),
        await engine.submit(push(auth={"username": "bob", "password": "one"})),
        await engine.submit(push()),
        await engine.submit(push(tag="v2")),
        await engine.submit(
            DockerTask(task_type=TaskType.PULL, params={"image_name": "team/app", "tag": "latest"})
        ),
    ]
    assert [s.status for s in submissions] == [TaskStatus.PENDING] * 6
    assert all(s.merged_into is None for s in submissions)

    same_credentials = await engine.submit(push(auth=dict(alice)))
    assert same_credentials.merged_into == submissions[0].task_id


async def test_a_submission_after_the_first_finished_is_new_work(
    make_engine: EngineFactory,
) -> None:
    work = Work(block=False)
    engine = await make_engine(work)
    first = await engine.add_task(push())
    await within(engine.wait_for(first))
    again = await engine.submit(push())
    assert again.status is TaskStatus.PENDING
    assert again.merged_into is None
    await within(engine.wait_for(again.task_id))
    assert work.starts == [first, again.task_id]


async def test_a_paused_or_cancelled_task_takes_no_merges(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work)
    engine.pause_queue()
    paused = await engine.add_task(push())
    await engine.pause_task(paused)
    while_paused = await engine.submit(push())
    assert while_paused.merged_into is None

    await engine.cancel_task(while_paused.task_id)
    after_cancel = await engine.submit(push())
    assert after_cancel.merged_into is None


async def test_a_recovered_pending_task_still_takes_merges(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    # Regression: after a restart, pending tasks were no longer found as twins, so an identical
    # submission ran the same work a second time.
    first_engine = await make_engine(Work())
    first_engine.pause_queue()
    first = await first_engine.add_task(push())
    await first_engine.close()

    work = Work()
    engine = await make_engine(work)
    assert engine.paused  # the pause is kept across the restart
    twin = await engine.submit(push())
    assert twin.status is TaskStatus.MERGED
    assert twin.merged_into == first
    await engine.resume_queue()
    work.release()
    assert (await within(engine.wait_for(twin.task_id))).id == first
    _, total = await engine.list_tasks(TaskQuery(status=[TaskStatus.COMPLETED]))
    assert total == 1
