"""What an executor reports through while it runs one attempt of one task.

Steps are durable before ``step()`` returns. Progress and log lines arrive far more often (a pull
reports every chunk), so they update the task in memory, reach subscribers at once, and are
written by the engine's flusher at a bounded rate.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ai_admin.errors import AiAdminError
from ai_admin.queue.events import EventKind
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.secrets import mask, mask_values

_MAX_PROGRESS_BEFORE_DONE = 99.9


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
    ) -> None:
        self._task = task
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

    def progress(self, percent: float, description: str | None = None) -> None:
        self._on_loop(self._apply_progress, percent, description)

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

    def _apply_progress(self, percent: float, description: str | None) -> None:
        value = round(min(max(percent, 0.0), _MAX_PROGRESS_BEFORE_DONE), 1)
        task = self._task
        if self._stopped or (value <= task.progress and not description):
            return
        task.progress = max(task.progress, value)
        if description:
            task.current_step = mask(description, self._hidden)
        self._changed(task, EventKind.PROGRESS, None)

    def _apply_log(self, line: str) -> None:
        if self._stopped or self._log_lines <= 0:
            return
        logs = self._task.logs
        logs.append(mask(line.rstrip("\n"), self._hidden))
        if len(logs) > self._log_lines:
            del logs[: len(logs) - self._log_lines]
        self._changed(self._task, EventKind.LOG, logs[-1])
