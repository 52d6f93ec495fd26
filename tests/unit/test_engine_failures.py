"""Failures: timeouts, automatic retries with backoff for transient errors only, error advice."""

from __future__ import annotations

import itertools
import random
import time

from queue_helpers import EngineFactory, Work, make_task, within

from ai_admin.errors import ErrorCode, ExecutionError, code_info
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskStatus, TaskType
from ai_admin.queue.retry_policy import RetryPolicy

E = ErrorCode


def network_error() -> ExecutionError:
    return ExecutionError("registry unreachable", code=E.DOCKER_NETWORK_ERROR)


async def test_a_task_running_past_its_timeout_ends_in_timeout_and_is_not_retried(
    make_engine: EngineFactory,
) -> None:
    work = Work()  # never released: it would run forever
    engine = await make_engine(work, max_retries=3)
    task_id = await engine.add_task(make_task("slow", timeout_s=0.05))

    task = await within(engine.wait_for(task_id))

    assert task.status is TaskStatus.TIMEOUT
    assert task.error_code == E.SYSTEM_TIMEOUT.value
    assert task.error_details == {"timeout_s": 0.05}
    assert task.error_info is not None
    assert task.error_info.description == code_info(E.SYSTEM_TIMEOUT).description
    assert task.retry_count == 0
    assert work.starts == [task_id]
    assert work.cancelled == [task_id]  # the executor was really stopped
    assert task.can_retry  # by hand
    assert task.duration_s is not None
    assert task.duration_s >= 0.04  # wall clock vs the loop's monotonic clock
    stats = await engine.get_queue_stats()
    assert stats["performance"]["timed_out"] == 1
    assert stats["counters"]["retried"] == 0
    assert stats["distributions"]["error"] == {"SYSTEM_TIMEOUT": 1}


async def test_the_default_timeout_applies_when_a_task_has_none(
    make_engine: EngineFactory,
) -> None:
    work = Work()
    engine = await make_engine(work, default_timeout_s=0.05)
    task_id = await engine.add_task(make_task("slow"))
    task = await within(engine.wait_for(task_id))
    assert task.status is TaskStatus.TIMEOUT
    assert task.timeout_s == 0.05


async def test_transient_failures_are_retried_up_to_max_retries_following_the_backoff(
    make_engine: EngineFactory,
) -> None:
    settings = {"retry_base_s": 0.02, "retry_factor": 2.0, "retry_cap_s": 0.05}
    work = Work(block=False)
    engine = await make_engine(work, **settings)
    task = make_task("unreachable", max_retries=3)
    work.fail(task.id, *(network_error() for _ in range(4)))

    task_id = await engine.add_task(task)
    done = await within(engine.wait_for(task_id))

    assert done.status is TaskStatus.FAILED
    assert done.error_code == E.DOCKER_NETWORK_ERROR.value
    assert done.retry_count == 3
    assert work.attempts[task_id] == [1, 2, 3, 4]
    policy = RetryPolicy(base_s=0.02, factor=2.0, cap_s=0.05, jitter=engine.settings.retry_jitter)
    starts = work.start_times[task_id]
    for n, (before, after) in enumerate(itertools.pairwise(starts), start=1):
        nominal = min(policy.cap_s, policy.base_s * policy.factor ** (n - 1))
        least = nominal * (1 - policy.jitter)
        assert after - before >= least - 0.002, f"retry {n} came after {after - before:.4f} s"
    stats = await engine.get_queue_stats()
    assert stats["counters"]["retried"] == 3
    assert stats["counters"]["failed"] == 1
    assert stats["counters"]["dequeued"] == 4
    assert stats["retries"]["total_retries"] == 3
    assert stats["retries"]["tasks_with_retries"] == 1
    assert stats["retries"]["tasks_at_max_retries"] == 1


async def test_the_backoff_waits_at_least_the_policys_delay_for_the_seed(
    make_engine: EngineFactory,
) -> None:
    """With a seeded rng the engine's delays are exactly RetryPolicy's for that seed."""
    work = Work(block=False)
    engine = await make_engine(work, seed=7, retry_base_s=0.02, retry_cap_s=0.08)
    task = make_task("seeded", max_retries=3)
    work.fail(task.id, *(network_error() for _ in range(3)))
    task_id = await engine.add_task(task)
    done = await within(engine.wait_for(task_id))
    assert done.status is TaskStatus.COMPLETED

    rng = random.Random(7)
    policy = RetryPolicy(0.02, 2.0, 0.08, engine.settings.retry_jitter)
    expected = [policy.delay_s(n, rng) for n in (1, 2, 3)]
    starts = work.start_times[task_id]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 3
    for gap, delay in zip(gaps, expected, strict=True):
        assert gap >= delay - 0.002, (gaps, expected)


async def test_a_transient_failure_then_success_completes_with_one_retry(
    make_engine: EngineFactory,
) -> None:
    work = Work(block=False)
    engine = await make_engine(work)
    task = make_task("blip")
    work.fail(task.id, network_error())
    task_id = await engine.add_task(task)

    done = await within(engine.wait_for(task_id))

    assert done.status is TaskStatus.COMPLETED
    assert done.retry_count == 1
    assert done.error_code is None  # a later success clears the earlier error
    assert done.result == {"done": task_id}
    assert work.attempts[task_id] == [1, 2]
    stats = await engine.get_queue_stats()
    assert stats["performance"]["success_rate"] == 100.0


async def test_permanent_failures_are_never_retried(make_engine: EngineFactory) -> None:
    work = Work(block=False)
    engine = await make_engine(work, max_retries=5)
    task = make_task("ghost")
    work.fail(task.id, ExecutionError("manifest unknown", code=E.DOCKER_IMAGE_NOT_FOUND))
    task_id = await engine.add_task(task)

    done = await within(engine.wait_for(task_id))

    assert done.status is TaskStatus.FAILED
    assert done.retry_count == 0
    assert work.starts == [task_id]
    summary = await engine.get_task_summary(task_id)
    assert summary["error"]["code"] == "DOCKER_IMAGE_NOT_FOUND"
    assert summary["error"]["message"] == "manifest unknown"
    assert summary["error"]["transient"] is False
    assert summary["error"]["suggestions"] == list(code_info(E.DOCKER_IMAGE_NOT_FOUND).suggestions)
    assert summary["retry"]["can_retry"] is True  # by hand, up to max_retries
    assert summary["status"] == {"value": "failed", "description": "Failed with an error"}


async def test_an_executor_may_mark_a_failure_transient(make_engine: EngineFactory) -> None:
    work = Work(block=False)
    engine = await make_engine(work)
    task = make_task("flaky-build")
    work.fail(task.id, ExecutionError("EOF", code=E.DOCKER_BUILD_FAILED, transient=True))
    task_id = await engine.add_task(task)
    done = await within(engine.wait_for(task_id))
    assert done.status is TaskStatus.COMPLETED
    assert done.retry_count == 1


async def test_an_unexpected_exception_is_unknown_error_and_not_retried(
    make_engine: EngineFactory,
) -> None:
    work = Work(block=False)
    engine = await make_engine(work, max_retries=3)
    task = make_task("bug")
    work.fail(task.id, ValueError("boom"))
    task_id = await engine.add_task(task)
    done = await within(engine.wait_for(task_id))
    assert done.status is TaskStatus.FAILED
    assert done.error_code == E.UNKNOWN_ERROR.value
    assert done.error == "ValueError: boom"
    assert done.retry_count == 0


async def test_a_task_type_without_executor_fails_with_internal_error(
    make_engine: EngineFactory,
) -> None:
    work = Work(block=False)
    engine = await make_engine({TaskType.PULL: work})
    task_id = await engine.add_task(make_task("image", TaskType.BUILD))
    done = await within(engine.wait_for(task_id))
    assert done.status is TaskStatus.FAILED
    assert done.error_code == E.INTERNAL_ERROR.value


async def test_the_failed_attempts_context_reports_the_attempt_number(
    make_engine: EngineFactory,
) -> None:
    seen: list[int] = []

    async def executor(ctx: TaskContext) -> dict[str, int]:
        seen.append(ctx.attempt)
        if ctx.attempt < 3:
            raise network_error()
        return {"attempt": ctx.attempt}

    engine = await make_engine(executor, max_retries=2)
    task_id = await engine.add_task(make_task("third-time-lucky"))
    done = await within(engine.wait_for(task_id))
    assert done.result == {"attempt": 3}
    assert seen == [1, 2, 3]


async def test_a_task_cancelled_or_paused_in_its_backoff_is_no_longer_waited_for(
    make_engine: EngineFactory,
) -> None:
    # Regression: the backoff entry outlived the cancel or pause; join() waited out the whole
    # delay and queue_size still counted the task.
    work = Work(block=False)
    engine = await make_engine(work, retry_base_s=60, retry_cap_s=60)
    cancelled, paused = make_task("cancelled"), make_task("paused")
    for task in (cancelled, paused):
        work.fail(task.id, network_error())
    sub = engine.subscribe()
    await engine.add_task(cancelled)
    await engine.add_task(paused)
    backing_off: set[str] = set()
    while len(backing_off) < 2:
        event = await within(sub.next())
        assert event is not None
        if event.event == "status" and "Retry 1" in event.current_step:
            backing_off.add(event.task_id)
    assert (await engine.get_queue_stats())["summary"]["queue_size"] == 2

    await engine.cancel_task(cancelled.id)
    await engine.pause_task(paused.id)

    await within(engine.join(), 5)
    assert (await engine.get_queue_stats())["summary"]["queue_size"] == 0
    assert work.starts == [cancelled.id, paused.id]
    summary = await engine.get_task_summary(paused.id)
    assert summary["status"]["value"] == "paused"


async def test_each_retry_is_due_exactly_its_backoff_step_after_the_failure_and_runs_then(
    make_engine: EngineFactory,
) -> None:
    # From above as well as below: a retry one backoff step late, or past retry_cap_s, is
    # caught, as is one the scheduler starts late. With no jitter the delays are exact.
    base_s, factor, cap_s = 0.2, 2.0, 0.5  # 0.2, 0.4, then capped at 0.5 (not 0.8)
    expected_s = [0.2, 0.4, 0.5]
    failed_at: list[float] = []
    started_at: list[float] = []

    async def executor(ctx: TaskContext) -> dict[str, int]:
        started_at.append(time.time())
        if ctx.attempt <= len(expected_s):
            failed_at.append(time.time())
            raise network_error()
        return {"attempt": ctx.attempt}

    engine = await make_engine(
        executor,
        retry_base_s=base_s,
        retry_factor=factor,
        retry_cap_s=cap_s,
        retry_jitter=0.0,
        max_retries=len(expected_s),
    )
    task = make_task("backing-off")
    sub = engine.subscribe(task.id)
    await engine.add_task(task)
    due_at: list[float] = []
    announced_at: list[float] = []
    while len(due_at) < len(expected_s):
        event = await within(sub.next())
        assert event is not None
        if event.event == "status" and event.current_step.startswith("Retry"):
            # The event is made after the failure is recorded; the backoff is far from over.
            announced_at.append(event.at)
            backing_off = await engine.require_task(task.id)
            assert backing_off.next_attempt_at is not None, "read after the backoff ended"
            due_at.append(backing_off.next_attempt_at)
    done = await within(engine.wait_for(task.id))
    assert done.status is TaskStatus.COMPLETED
    assert done.retry_count == len(expected_s)

    for n, (delay_s, failed, announced, due) in enumerate(
        zip(expected_s, failed_at, announced_at, due_at, strict=True), start=1
    ):
        # The engine's clock read lies between the executor's raise and the event.
        assert failed + delay_s - 1e-6 <= due <= announced + delay_s + 1e-6, (
            f"retry {n} is due {due - failed:.3f} s after its failure, not {delay_s} s"
        )
        assert due - 0.002 <= started_at[n] <= due + 0.15, (
            f"retry {n} started {started_at[n] - due:+.3f} s from when it was due"
        )
