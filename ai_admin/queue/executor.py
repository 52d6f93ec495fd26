"""How work plugs into the queue: an executor per task type, given a context to report through.

The queue knows nothing about Docker. An executor is an async callable that receives a
``TaskContext`` and returns the task's result (a JSON-able dict), or raises:

- ``AiAdminError`` (usually ``ExecutionError``) with a code and a ``transient`` flag: the queue
  retries transient failures with backoff and fails the task on permanent ones;
- any other exception: recorded as ``UNKNOWN_ERROR``, not retried.

Cancel, pause, timeout and shutdown cancel the executor's asyncio task. An executor that runs
blocking code in a thread must stop that code when cancelled (close the stream, watch
``ctx.stop_requested``) and only then let ``CancelledError`` propagate.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from ai_admin.queue.models import TaskStatus, TaskType


class TaskContext(Protocol):
    @property
    def task_id(self) -> str: ...

    @property
    def task_type(self) -> TaskType: ...

    @property
    def params(self) -> Mapping[str, Any]:
        """The submitted params, credentials included (they are never stored)."""
        ...

    @property
    def attempt(self) -> int:
        """1 for the first run, 2 after the first retry, ..."""
        ...

    @property
    def stop_requested(self) -> threading.Event:
        """Set when the run must stop; for code running in a worker thread."""
        ...

    async def step(self, status: TaskStatus, description: str | None = None) -> None:
        """Enter a step (validating, preparing, building, ...); durable once it returns."""

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
        """Report progress 0-100; only increases within an attempt; coalesced before storage.

        The counts behind it, where the executor knows them, become the task's
        ``progress_detail``: ``phase`` names what is being counted ("downloading",
        "uploading", ...), ``bytes_done`` of ``bytes_total`` moved in it, layers and build steps.
        The context derives the smoothed rate and the time left from the bytes (a new phase
        starts a new rate). Counts given once are kept until a report of the same phase
        changes them.

        Thread-safe: may be called from a worker thread.
        """

    def log(self, line: str) -> None:
        """Append a line to the task's bounded log. Thread-safe."""


Executor = Callable[[TaskContext], Awaitable[dict[str, Any]]]
ExecutorMap = Mapping[TaskType, Executor]
