"""Dependencies: a task waits for the tasks it names, and fails if one of them does not complete."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from queue_helpers import EngineFactory, Work, make_task, within

from ai_admin.errors import AiAdminError, ErrorCode, ExecutionError
from ai_admin.queue.models import DockerTask, TaskStatus
from ai_admin.queue.sqlite_store import SqliteStore

DEPENDENCY_FAILED = ErrorCode.QUEUE_DEPENDENCY_FAILED.value


def _broken() -> ExecutionError:
    return ExecutionError("no such image", code=ErrorCode.DOCKER_IMAGE_NOT_FOUND, transient=False)


async def test_a_task_waits_for_its_dependency_then_runs(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=4)
    build = await engine.add_task(make_task("build"))
    push = await engine.add_task(make_task("push", depends_on=[build]))
    await work.started(build)

    waiting = await engine.require_task(push)
    assert waiting.status is TaskStatus.PENDING
    assert build in waiting.current_step
    assert engine.queue_position(waiting) is None
    await asyncio.sleep(0.05)
    assert work.starts == [build]  # a free slot, and still it waits

    work.release()
    assert (await within(engine.wait_for(push))).status is TaskStatus.COMPLETED
    assert work.starts == [build, push]


async def test_a_task_waits_for_all_of_its_dependencies(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=4)
    first = await engine.add_task(make_task("first"))
    second = await engine.add_task(make_task("second"))
    last = await engine.add_task(make_task("last", depends_on=[first, second, first]))
    assert (await engine.require_task(last)).depends_on == [first, second]
    work.release(first)
    await within(engine.wait_for(first))
    step = (await engine.require_task(last)).current_step
    assert second in step
    assert first not in step
    assert last not in work.starts
    work.release()
    await within(engine.wait_for(last))
    assert work.starts.index(last) > work.starts.index(second)


async def test_a_failed_dependency_fails_its_dependents_in_turn(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=4)
    build = await engine.add_task(make_task("build"))
    push = await engine.add_task(make_task("push", depends_on=[build]))
    deploy = await engine.add_task(make_task("deploy", depends_on=[push]))
    work.fail_late(build, _broken())
    work.release()

    failed_push = await within(engine.wait_for(push))
    assert failed_push.status is TaskStatus.FAILED
    assert failed_push.error_code == DEPENDENCY_FAILED
    assert failed_push.error_details is not None
    assert failed_push.error_details["dependency"] == build
    assert failed_push.error_details["dependency_error_code"] == "DOCKER_IMAGE_NOT_FOUND"
    failed_deploy = await within(engine.wait_for(deploy))
    assert failed_deploy.error_code == DEPENDENCY_FAILED
    assert failed_deploy.error_details is not None
    assert failed_deploy.error_details["dependency"] == push
    assert work.starts == [build]


@pytest.mark.parametrize("end", ["cancel", "timeout"])
async def test_a_cancelled_or_timed_out_dependency_fails_its_dependent(
    make_engine: EngineFactory, end: str
) -> None:
    work = Work()
    engine = await make_engine(work)
    first = await engine.add_task(make_task("first", timeout_s=0.05 if end == "timeout" else None))
    then = await engine.add_task(make_task("then", depends_on=[first]))
    await work.started(first)
    if end == "cancel":
        await engine.cancel_task(first)
    ended = await within(engine.wait_for(then))
    assert ended.error_code == DEPENDENCY_FAILED
    assert ended.error_details is not None
    assert ended.error_details["dependency_status"] == (
        "cancelled" if end == "cancel" else "timeout"
    )


async def test_unknown_ids_and_a_task_naming_itself_are_refused(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(Work())
    with pytest.raises(AiAdminError) as unknown:
        await engine.submit(make_task("x", depends_on=["no-such-task"]))
    assert unknown.value.code is ErrorCode.QUEUE_DEPENDENCY_INVALID
    assert unknown.value.details["dependency"] == "no-such-task"
    itself = make_task("y")
    itself.depends_on = [itself.id]
    with pytest.raises(AiAdminError) as cycle:
        await engine.submit(itself)
    assert cycle.value.code is ErrorCode.QUEUE_DEPENDENCY_INVALID
    assert "cycle" in cycle.value.message
    assert engine.queue_view().waiting == 0
    assert (await engine.get_task(itself.id)) is None


async def test_finished_dependencies_are_judged_at_submit(make_engine: EngineFactory) -> None:
    work = Work(block=False)
    engine = await make_engine(work)
    done = await engine.add_task(make_task("done"))
    broken = await engine.add_task(make_task("broken"))
    work.fail(broken, _broken())
    await within(engine.join())

    runs = await engine.submit(make_task("runs", depends_on=[done]))
    assert (await within(engine.wait_for(runs.task_id))).status is TaskStatus.COMPLETED
    refused = await engine.submit(make_task("never", depends_on=[done, broken]))
    assert refused.status is TaskStatus.FAILED
    stored = await engine.require_task(refused.task_id)
    assert stored.error_code == DEPENDENCY_FAILED
    assert refused.task_id not in work.starts


async def test_a_merged_dependency_is_followed_to_its_twin(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work)
    original = await engine.add_task(make_task("pull"))
    twin = await engine.submit(make_task("pull"))
    assert twin.merged_into == original
    after = await engine.add_task(make_task("after", depends_on=[twin.task_id]))
    assert original in (await engine.require_task(after)).current_step
    work.release()
    await within(engine.wait_for(after))
    assert work.starts == [original, after]


async def test_different_dependencies_make_different_work(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work)
    gate = await engine.add_task(make_task("gate"))
    plain = await engine.submit(make_task("same"))
    gated = await engine.submit(make_task("same", depends_on=[gate]))
    assert gated.merged_into is None
    assert gated.status is TaskStatus.PENDING
    work.release()
    await within(engine.wait_for(gated.task_id))
    assert {plain.task_id, gated.task_id} <= set(work.starts)


async def test_a_paused_dependent_stays_paused_when_its_dependency_completes(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work)
    first = await engine.add_task(make_task("first"))
    then = await engine.add_task(make_task("then", depends_on=[first]))
    await engine.pause_task(then)
    work.release()
    await within(engine.wait_for(first))
    await asyncio.sleep(0.05)
    assert (await engine.require_task(then)).status is TaskStatus.PAUSED
    await engine.resume_task(then)
    assert (await within(engine.wait_for(then))).status is TaskStatus.COMPLETED


async def test_a_dependent_is_retried_once_its_dependency_is(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work)
    first = await engine.add_task(make_task("first", max_retries=0))
    then = await engine.add_task(make_task("then", depends_on=[first]))
    work.fail_late(first, _broken())
    work.release(first)
    await within(engine.wait_for(then))

    with pytest.raises(AiAdminError) as refused:
        await engine.retry_task(then)
    assert refused.value.code is ErrorCode.QUEUE_DEPENDENCY_FAILED
    assert refused.value.details["dependency"] == first

    await engine.retry_task(first, force=True)
    again = await engine.retry_task(then)
    assert again.status is TaskStatus.PENDING
    assert first in again.current_step
    work.release()
    assert (await within(engine.wait_for(then))).status is TaskStatus.COMPLETED
    assert work.starts == [first, first, then]


async def test_dependencies_survive_a_restart(make_engine: EngineFactory) -> None:
    work = Work()
    engine = await make_engine(work)
    build = await engine.add_task(make_task("build"))
    push = await engine.add_task(make_task("push", depends_on=[build]))
    await work.started(build)
    await engine.close(grace_s=0)

    again_work = Work(block=False)
    again = await make_engine(again_work)
    assert (await within(again.wait_for(push))).status is TaskStatus.COMPLETED
    assert again_work.starts == [build, push]


async def test_a_recovered_dependent_waits_again_and_fails_with_its_dependency(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = await make_engine(Work())
    await engine.pause_queue()
    first = await engine.add_task(make_task("first"))
    second = await engine.add_task(make_task("second"))
    then = await engine.add_task(make_task("then", depends_on=[first]))
    later = await engine.add_task(make_task("later", depends_on=[second]))
    await engine.close()

    # While the agent is down, "first" ends failed (as written by the process that ran it).
    store = SqliteStore(tmp_path / "q.db")
    await store.open()
    stored = await store.get(first)
    assert stored is not None
    stored.status = TaskStatus.FAILED
    await store.save([stored])
    await store.close()

    again = await make_engine(Work())
    assert (await again.require_task(then)).error_code == DEPENDENCY_FAILED
    assert second in (await again.require_task(later)).current_step
    await again.cancel_task(second)
    assert (await within(again.wait_for(later))).error_code == DEPENDENCY_FAILED


class SlowReads:
    """The store, with reads of one task slowed down while a test says so."""

    def __init__(self, inner: SqliteStore) -> None:
        self._inner = inner
        self.slow: str | None = None
        self.reading = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, task_id: str) -> DockerTask | None:
        if task_id == self.slow:
            self.reading.set()
            await asyncio.sleep(0.2)
        return await self._inner.get(task_id)


async def test_a_dependency_ending_while_a_dependent_is_submitted_does_not_strand_it(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    # Guard: _dependencies_now checks again, with no await since, that what the task waits
    # for is still unfinished. Without it the dependent waits for a task that ended while its
    # other dependency was being read, and is never released.
    store = SlowReads(SqliteStore(tmp_path / "slow.db"))
    work = Work()
    engine = await make_engine(work, store=store, max_concurrent=4)  # type: ignore[arg-type]
    done = await engine.add_task(make_task("done"))
    work.release(done)
    await within(engine.wait_for(done))
    first = await engine.add_task(make_task("first"))
    await work.started(first)

    store.slow = done
    submitted = asyncio.ensure_future(engine.add_task(make_task("then", depends_on=[first, done])))
    await within(store.reading.wait())  # it knows "first" is running; "done" is being read
    work.release(first)
    await within(engine.wait_for(first))
    then = await within(submitted)
    work.release()
    assert (await within(engine.wait_for(then), 5)).status is TaskStatus.COMPLETED


async def test_many_dependents_submitted_while_their_dependency_ends_each_run_once(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, max_concurrent=8)
    first = await engine.add_task(make_task("first"))
    await work.started(first)

    async def submit(i: int) -> str:
        await asyncio.sleep(i * 0.001)
        return await engine.add_task(make_task(f"dependent-{i}", depends_on=[first]))

    async def finish() -> None:
        await asyncio.sleep(0.01)
        work.release()

    *ids, _ = await within(asyncio.gather(*(submit(i) for i in range(30)), finish()))
    for task_id in ids:
        assert (await within(engine.wait_for(task_id))).status is TaskStatus.COMPLETED
    assert sorted(work.starts) == sorted([first, *ids])
    assert all(work.starts.index(i) > 0 for i in ids)


async def test_a_waiting_dependents_deleted_dependency_counts_as_completed_after_a_restart(
    make_engine: EngineFactory,
) -> None:
    # Guard: a recovered task takes a dependency no longer stored (deleted by queue_clear or
    # retention, which delete only finished tasks) as completed. Without it, the engine
    # refuses to start: the recovered task's dependency is an unknown id.
    work = Work(block=False)
    engine = await make_engine(work)
    done = await engine.add_task(make_task("done"))
    await within(engine.wait_for(done))
    await engine.pause_queue()
    then = await engine.add_task(make_task("then", depends_on=[done]))
    assert await engine.clear() == 1  # the completed dependency is gone
    await engine.close()

    again_work = Work(block=False)
    again = await make_engine(again_work)
    await again.resume_queue()
    assert (await within(again.wait_for(then))).status is TaskStatus.COMPLETED
    assert again_work.starts == [then]
