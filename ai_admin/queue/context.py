"""What an executor reports through while it runs one attempt of one task.

Steps are durable before ``step()`` returns. Progress and log lines arrive far more often (a pull
reports every chunk), so they update the task in memory, reach subscribers at once, and are
written by the engine's flusher at a bounded rate. Byte counts given with progress become the
task's ``progress_detail``, with a rate and time left from a ``RateMeter`` per phase.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ai_admin.errors import AiAdminError
from ai_admin.queue.events import EventKind
from ai_admin.queue.models import DockerTask, ProgressDetail, TaskStatus, TaskType
from ai_admin.queue.rate import RateMeter
from ai_admin.queue.secrets import mask, mask_values

_MAX_PROGRESS_BEFORE_DONE = 99.9


@dataclass(frozen=True, slots=True)
class _Counts:
    """What an executor counted at one progress report, and when (the context's clock)."""

    at_s: float
    phase: str | None
    bytes_done: int | None
    bytes_total: int | None
    layers_done: int | None
    layers_total: int | None
    step: int | None
    steps_total: int | None

    @property
    def empty(self) -> bool:
        return all(
            v is None
            for v in (
                self.phase,
                self.bytes_done,
                self.bytes_total,
                self.layers_done,
                self.layers_total,
                self.step,
                self.steps_total,
            )
        )


class RunContext:
    """Implements ``ai_admin.queue.executor.TaskContext`` for the engine."""

    def __init__(
        self,
        task: DockerTask,
        params: Mapping[str, Any],
        *,
        log_lines: int,
        loop: asyncio.AbstractEventLoop,
        commit_step: Callable[[DockerTask], Awaitable[None]],
        changed: Callable[[DockerTask, EventKind, str | None], None],
        hidden: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._task = task
        task.progress_detail = None  # a new attempt: the last one's numbers are not this one's
        self._clock = clock
        self._meter = RateMeter()
        self._params = params
        self._log_lines = log_lines
        self._loop = loop
        self._commit_step = commit_step
        self._changed = changed
        # The task's secret values (``secrets.secret_values``): a build may print a secret
        # build arg, and what it prints is stored and shown.
        self._hidden = hidden
        self._stopped = False
        self._stop_event: threading.Event | None = None  # made only if an executor asks

    @property
    def task_id(self) -> str:
        return self._task.id

    @property
    def task_type(self) -> TaskType:
        return self._task.task_type

    @property
    def params(self) -> Mapping[str, Any]:
        return self._params

    @property
    def attempt(self) -> int:
        return self._task.retry_count + 1

    @property
    def stop_requested(self) -> threading.Event:
        if self._stop_event is None:
            self._stop_event = threading.Event()
            if self._stopped:
                self._stop_event.set()
        return self._stop_event

    def hide(self, error: AiAdminError) -> AiAdminError:
        """``error`` with the task's secret values masked: an executor's message may quote
        what the build printed."""
        if self._hidden:
            error.message = mask(error.message, self._hidden)
            error.details = mask_values(error.details, self._hidden)
        return error

    def stop(self) -> None:
        """The run is over or must end: ignore further reports, tell threads to stop."""
        self._stopped = True
        if self._stop_event is not None:
            self._stop_event.set()

    async def step(self, status: TaskStatus, description: str | None = None) -> None:
        if not status.is_active:
            raise ValueError(f"{status.value} is not a step of a running task")
        self._task.status = status
        self._task.current_step = mask(description or status.description, self._hidden)
        await self._commit_step(self._task)

    def progress(
        self,
        percent: float,
        description: str | None = None,
        *,
        phase: str | None = None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
        layers_done: int | None = None,
        layers_total: int | None = None,
        step: int | None = None,
        steps_total: int | None = None,
    ) -> None:
        counts = _Counts(
            self._clock(),  # when it was counted, not when the loop gets to it
            phase,
            bytes_done,
            bytes_total,
            layers_done,
            layers_total,
            step,
            steps_total,
        )
        self._on_loop(self._apply_progress, percent, description, None if counts.empty else counts)

    def log(self, line: str) -> None:
        self._on_loop(self._apply_log, line)

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        if self._stopped:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _apply_progress(
        self, percent: float, description: str | None, counts: _Counts | None
    ) -> None:
        value = round(min(max(percent, 0.0), _MAX_PROGRESS_BEFORE_DONE), 1)
        task = self._task
        if self._stopped:
            return
        detail = self._detail(counts) if counts is not None else task.progress_detail
        if value <= task.progress and not description and detail == task.progress_detail:
            return
        task.progress = max(task.progress, value)
        task.progress_detail = detail
        if description:
            task.current_step = mask(description, self._hidden)
        self._changed(task, EventKind.PROGRESS, None)

    def _detail(self, counts: _Counts) -> ProgressDetail:
        """The task's numbers after ``counts``: what was not given is kept from the same phase;
        the rate and time left come from the phase's bytes."""
        last = self._task.progress_detail
        if last is not None and counts.phase is not None and counts.phase != last.phase:
            last = None  # a new phase counts from zero
            self._meter = RateMeter()
        if counts.bytes_done is not None:
            self._meter.update(counts.at_s, counts.bytes_done)

        def pick(given: Any, name: str) -> Any:
            return given if given is not None else getattr(last, name, None)

        bytes_done = pick(counts.bytes_done, "bytes_done")
        bytes_total = pick(counts.bytes_total, "bytes_total")
        moving = bytes_done is not None
        rate = self._meter.rate_bps if moving else None
        eta = self._meter.eta_s(bytes_total) if moving else None
        return ProgressDetail(
            phase=pick(counts.phase, "phase"),
            bytes_done=bytes_done,
            bytes_total=bytes_total,
            rate_bps=round(rate, 1) if rate is not None else None,
            eta_s=round(eta, 1) if eta is not None else None,
            layers_done=pick(counts.layers_done, "layers_done"),
            layers_total=pick(counts.layers_total, "layers_total"),
            step=pick(counts.step, "step"),
            steps_total=pick(counts.steps_total, "steps_total"),
        )

    def _apply_log(self, line: str) -> None:
        if self._stopped or self._log_lines <= 0:
            return
        logs = self._task.logs
        logs.append(mask(line.rstrip("\n"), self._hidden))
        if len(logs) > self._log_lines:
            del logs[: len(logs) - self._log_lines]
        self._changed(self._task, EventKind.LOG, logs[-1])
