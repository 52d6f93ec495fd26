"""Helpers for the queue tests: ``Work``, a small in-process executor the test steers with
events, task and settings builders, stores whose writes fail (``FailingStore``) or are held
open (``HeldStore``), and assertions on refused actions.

Nothing here sleeps to wait for an outcome: tests wait on the engine (``join``, ``wait_for``,
subscriptions) or on ``Work.wait_until``, always under ``WAIT_S`` so a bug fails fast instead of
hanging.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import Future
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from ai_admin.config import Settings
from ai_admin.errors import AiAdminError, ErrorCode, TransitionNotAllowed
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.executor import Executor, TaskContext
from ai_admin.queue.models import DockerTask, TaskPriority, TaskStatus, TaskType
from ai_admin.queue.store import QueueStore

WAIT_S = 15.0
T = TypeVar("T")


async def within(aw: Awaitable[T], timeout_s: float = WAIT_S) -> T:
    """Await ``aw``, failing the test (not hanging it) if it takes longer than ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        return await aw


def make_task(
    name: str = "app",
    task_type: TaskType = TaskType.PULL,
    *,
    priority: TaskPriority = TaskPriority.NORMAL,
    **fields: Any,
) -> DockerTask:
    """A task with params unique to ``name`` (identical params would be merged)."""
    params = {"image_name": name, **fields.pop("params", {})}
    return DockerTask(task_type=task_type, params=params, priority=priority, **fields)


class Work:
    """A fake executor: records every run and does what the test set up for the task.

    Each run, in order: records its start, raises the next error queued for the task in
    ``errors`` (if any), then waits until the task is released (unless ``block`` is False),
    raises the next error queued in ``late_errors`` (if any), optionally holds for ``hold_s``
    to overlap with other runs, and returns a result.
    A cancelled run records itself in ``cancelled`` before letting ``CancelledError`` go.
    """

    def __init__(self, *, block: bool = True, hold_s: float = 0.0) -> None:
        self.block = block
        self.hold_s = hold_s
        self.starts: list[str] = []
        self.start_times: dict[str, list[float]] = {}
        self.attempts: dict[str, list[int]] = {}
        self.params: dict[str, dict[str, Any]] = {}
        self.completed: list[str] = []
        self.cancelled: list[str] = []
        self.errors: dict[str, list[BaseException]] = {}
        self.late_errors: dict[str, list[BaseException]] = {}
        self.active = 0
        self.peak = 0
        self._released: set[str] = set()
        self._all_released = False
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def __call__(self, ctx: TaskContext) -> dict[str, Any]:
        task_id = ctx.task_id
        self.active += 1
        self.peak = max(self.peak, self.active)
        self.starts.append(task_id)
        self.start_times.setdefault(task_id, []).append(time.monotonic())
        self.attempts.setdefault(task_id, []).append(ctx.attempt)
        self.params[task_id] = dict(ctx.params)
        self._notify()
        try:
            queued = self.errors.get(task_id)
            if queued:
                raise queued.pop(0)
            while self.block and not (self._all_released or task_id in self._released):
                await self._changed.wait()
            late = self.late_errors.get(task_id)
            if late:
                raise late.pop(0)
            if self.hold_s:
                await asyncio.sleep(self.hold_s)  # simulated work, so runs overlap
            self.completed.append(task_id)
            return {"done": task_id}
        except asyncio.CancelledError:
            self.cancelled.append(task_id)
            raise
        finally:
            self.active -= 1
            self._notify()

    def release(self, task_id: str | None = None) -> None:
        """Let ``task_id`` (or every task, now and later) finish."""
        if task_id is None:
            self._all_released = True
        else:
            self._released.add(task_id)
        self._notify()

    def fail(self, task_id: str, *errors: BaseException) -> None:
        """Raise these errors from the task's next runs, one per run."""
        self.errors.setdefault(task_id, []).extend(errors)

    def fail_late(self, task_id: str, *errors: BaseException) -> None:
        """Raise these errors from the task's next runs once each is released."""
        self.late_errors.setdefault(task_id, []).extend(errors)

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await self._changed.wait()

    async def started(self, task_id: str, times: int = 1) -> None:
        """Wait until ``task_id`` has started ``times`` runs."""
        await self.wait_until(lambda: self.starts.count(task_id) >= times)


class EngineFactory(Protocol):
    async def __call__(
        self,
        executor: Executor | Mapping[TaskType, Executor] | None = None,
        *,
        db: Path | None = None,
        store: QueueStore | None = None,
        start: bool = True,
        seed: int = 0,
        **settings: Any,
    ) -> QueueEngine: ...


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "max_concurrent": 2,
        "retry_base_s": 0.01,
        "retry_cap_s": 0.05,
        "progress_write_interval_s": 0.05,
        "shutdown_grace_s": 0.5,
        **overrides,
    }
    return Settings(**values)


def executors_for(
    executor: Executor | Mapping[TaskType, Executor],
) -> dict[TaskType, Executor]:
    if isinstance(executor, Mapping):
        return dict(executor)
    return dict.fromkeys(TaskType, executor)


class FailingStore:
    """A real store whose next writes fail, as a full disk makes them fail.

    ``fail_saves(n)`` makes the next ``n`` saves of tasks raise ``error``. The counters given
    with a failed save are still written: worse than the SQLite store, which keeps them back
    until the next save with counters, so a caller that takes a count back is seen to store
    its correction. ``fail_flags(n)`` does the same for ``set_flag``. Everything else is the
    real store.
    """

    def __init__(self, inner: QueueStore, error: BaseException) -> None:
        self.inner = inner
        self.error = error
        self._saves = 0
        self._flags = 0

    def fail_saves(self, n: int = 1) -> None:
        self._saves = n

    def fail_flags(self, n: int = 1) -> None:
        self._flags = n

    def save(
        self, tasks: Sequence[DockerTask], counters: Mapping[str, float] | None = None
    ) -> Awaitable[None]:
        if self._saves and tasks:
            self._saves -= 1
            if counters:
                self.inner.save((), counters)
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(self.error)
            return failed
        return self.inner.save(tasks, counters)

    async def set_flag(self, name: str, value: str | None) -> None:
        if self._flags:
            self._flags -= 1
            raise self.error
        await self.inner.set_flag(name, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


_HeldSave = tuple[list[DockerTask], dict[str, float] | None, Future[None]]


class HeldStore:
    """A real store whose commits the test can hold open, to look at the engine while a write
    is on its way (the SQLite store commits within the same loop turn, too soon to look).

    After ``hold()`` each ``save`` is kept back: its tasks are copied as they are at the call
    (as the real store serialises them then) and its result stays pending. ``release()`` hands
    the kept saves to the real store in call order and lets their results settle with the real
    ones; saving goes straight through again. ``held()`` shows the tasks kept back, and
    ``until_held`` waits for one. A held save has not reached the database: a ``close()`` while
    saves are held (everything but ``save`` is the real store's) loses them, as a crash would,
    and releasing them afterwards fails them with the closed store's error.
    """

    def __init__(self, inner: QueueStore) -> None:
        self.inner = inner
        self._held: list[_HeldSave] | None = None
        self._changed = asyncio.Event()

    def hold(self) -> None:
        """Keep back every save from now until ``release``."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Hand the kept saves to the real store, in order; later saves go straight through."""
        held, self._held = self._held or [], None
        for tasks, counters, result in held:
            try:
                write = asyncio.ensure_future(self.inner.save(tasks, counters))
            except Exception as exc:  # refused at once (a closed store)
                result.set_exception(exc)
            else:
                write.add_done_callback(partial(_settle_like, result))

    def release_after(self, delay_s: float) -> None:
        """``release`` once ``delay_s`` has passed on the loop's clock."""
        asyncio.get_running_loop().call_later(delay_s, self.release)

    def held(self) -> list[DockerTask]:
        """The tasks of the saves kept back, as they were when saved, in call order."""
        return [t for tasks, _, _ in self._held or [] for t in tasks]

    async def until_held(
        self, predicate: Callable[[list[DockerTask]], bool], timeout_s: float = WAIT_S
    ) -> None:
        """Wait until ``predicate`` holds for ``held()``."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self.held()):
                await self._changed.wait()

    async def until_held_in(self, task_id: str, status: TaskStatus) -> None:
        """Wait until a save of ``task_id`` in ``status`` is kept back."""
        await self.until_held(lambda ts: any(t.id == task_id and t.status is status for t in ts))

    def save(
        self, tasks: Sequence[DockerTask], counters: Mapping[str, float] | None = None
    ) -> Awaitable[None]:
        if self._held is None:
            return self.inner.save(tasks, counters)
        result: Future[None] = asyncio.get_running_loop().create_future()
        copies = [t.model_copy(deep=True) for t in tasks]
        self._held.append((copies, dict(counters) if counters else None, result))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _settle_like(result: Future[None], write: Future[None]) -> None:
    if result.done():
        return
    if write.cancelled():
        result.cancel()
    elif (error := write.exception()) is not None:
        result.set_exception(error)
    else:
        result.set_result(None)


def _state(task: DockerTask) -> dict[str, Any]:
    """What memory and store must agree on (progress and logs are written at a bounded rate)."""
    return task.model_dump(exclude={"progress", "logs", "current_step"})


async def assert_consistent(
    engine: QueueEngine, store: QueueStore, task_ids: Iterable[str]
) -> None:
    """The engine agrees with its store: each task is live in memory if and only if it is
    unfinished there, a live task is the stored one, and the statistics count what is stored.

    Looks at the engine's private maps on purpose: a task that left memory while unfinished is
    exactly the loss these checks exist to catch, and no public view shows it."""
    for task_id in task_ids:
        stored = await store.get(task_id)
        assert stored is not None, f"{task_id} is not stored"
        record = engine._live.get(task_id)
        live = record.task if record is not None else None
        assert (live is not None) == (not stored.status.is_finished), (
            f"{task_id} is {stored.status.value} in the store and "
            f"{'in' if live is not None else 'not in'} memory"
        )
        if live is not None:
            assert _state(live) == _state(stored), (task_id, _state(live), _state(stored))
    counts = {k: n for k, n in (await store.class_counts()).items() if n}
    assert dict(engine._stats.gauges) == counts


async def refused(aw: Awaitable[Any], code: ErrorCode) -> AiAdminError:
    """Assert that ``aw`` is refused by the state machine with exactly ``code``."""
    with pytest.raises(TransitionNotAllowed) as info:
        await within(aw)
    assert info.value.code is code, f"expected {code}, got {info.value.code}: {info.value}"
    return info.value
