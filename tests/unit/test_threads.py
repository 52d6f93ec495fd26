"""The thread runner the store and the Docker client share (``ai_admin.threads``)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from queue_helpers import within

from ai_admin.threads import JobThread, in_thread, run_calls


async def test_in_thread_runs_on_a_named_daemon_thread_and_hands_back_the_result() -> None:
    def where() -> tuple[str, bool]:
        current = threading.current_thread()
        return current.name, current.daemon

    assert await within(in_thread(where, "runner-test")) == ("runner-test", True)


async def test_in_thread_hands_back_what_it_raised() -> None:
    def fail() -> None:
        raise KeyboardInterrupt  # a BaseException too: the caller decides

    with pytest.raises(KeyboardInterrupt):
        await within(in_thread(fail, "runner-fails"))


async def test_a_result_after_its_caller_gave_up_is_dropped() -> None:
    release = threading.Event()
    fut = in_thread(release.wait, "runner-abandoned")
    fut.cancel()
    release.set()
    await asyncio.sleep(0.05)  # the late result reaches the loop and is dropped quietly
    assert fut.cancelled()


class Resource:
    def __init__(self) -> None:
        self.thread: str | None = None
        self.closed_on: str | None = None

    def close(self) -> None:
        self.closed_on = threading.current_thread().name


async def test_a_job_thread_owns_its_resource_from_start_to_stop() -> None:
    resource = Resource()

    def open_resource() -> Resource:
        resource.thread = threading.current_thread().name
        return resource

    jobs = JobThread("runner-jobs", open_resource, run_calls, Resource.close)
    await within(jobs.start())
    assert resource.thread == "runner-jobs"
    assert jobs.is_alive()
    seen = await within(jobs.call(lambda r: (r is resource, threading.current_thread().name)))
    assert seen == (True, "runner-jobs")
    with pytest.raises(ZeroDivisionError):  # a failing job fails alone
        await within(jobs.call(lambda r: 1 / 0))
    assert await within(jobs.call(lambda r: "still serving")) == "still serving"
    await within(jobs.stop())
    assert resource.closed_on == "runner-jobs"  # closed before stop() returned
    assert not jobs.is_alive()
    await within(jobs.stop())  # twice is harmless


async def test_start_raises_what_opening_the_resource_raised() -> None:
    def cannot_open() -> Any:
        raise OSError("no such file")

    jobs: JobThread[Any, Any] = JobThread("runner-unopened", cannot_open, run_calls, print)
    with pytest.raises(OSError, match="no such file"):
        await within(jobs.start())
    await within(jobs.stop())


async def test_jobs_waiting_together_run_as_one_batch_in_order() -> None:
    batches: list[list[int]] = []
    gate = threading.Event()

    def run(resource: None, batch: list[int]) -> None:
        gate.wait()
        batches.append(batch)

    jobs: JobThread[None, int] = JobThread("runner-batches", lambda: None, run, lambda r: None)
    await within(jobs.start())
    jobs.put(0)
    await asyncio.sleep(0.05)  # the thread took job 0 and waits at the gate
    for n in range(1, 6):
        jobs.put(n)
    gate.set()
    await within(jobs.stop())  # the jobs queued before stop() still run
    assert batches == [[0], [1, 2, 3, 4, 5]]


async def test_stop_waits_for_the_job_running_and_does_not_block_the_loop() -> None:
    def slow(resource: None, batch: list[float]) -> None:
        time.sleep(batch[0])

    jobs: JobThread[None, float] = JobThread("runner-slow", lambda: None, slow, lambda r: None)
    await within(jobs.start())
    jobs.put(0.3)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await within(jobs.stop())
    ticker.cancel()
    assert not jobs.is_alive()
    assert ticks >= 5  # the loop ran while the thread finished its job
