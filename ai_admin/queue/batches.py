"""Batches: tasks submitted together, followed as one, and run one batch at a time per queue.

A *serial* batch (the default) waits in its queue's line: the queue runs one serial batch at a
time and promotes the next one when it finishes. A stopped batch (``batch_stop``: its running
tasks finish, nothing new starts) keeps its place at the head of the line, so the next one does
not start until someone starts it again (``batch_start``) or moves another ahead of it
(``batch_move``). A batch that is not serial starts at once and runs beside the others.

This module holds the batch record and the line's rules as plain data and functions; the
engine's side (``batch_control``) applies them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, Field

from ai_admin.errors import AiAdminError, ErrorCode
from ai_admin.queue.models import DockerTask, TaskStatus


class BatchState(StrEnum):
    QUEUED = "queued"  # waiting for its turn in its queue's line
    RUNNING = "running"  # its tasks may start
    STOPPED = "stopped"  # nothing new starts until it is started again
    COMPLETED = "completed"  # every task completed
    FAILED = "failed"  # every task finished, at least one not completed
    CANCELLED = "cancelled"  # cancelled as a whole (batch_cancel)

    @property
    def is_finished(self) -> bool:
        return self in (BatchState.COMPLETED, BatchState.FAILED, BatchState.CANCELLED)


class Batch(BaseModel):
    """A batch as the store keeps it (the record of kind ``batch``)."""

    batch_id: str
    name: str | None = None
    queue: str
    serial: bool = True
    state: BatchState
    task_ids: list[str]
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    place: float = 0.0  # its order in the line (smaller first)
    cancelled: bool = False  # batch_cancel was asked: it ends (and stays) cancelled
    progress: float = 0.0  # the highest overall progress shown so far (it never goes back)

    @property
    def waits(self) -> bool:
        """It is in its queue's line of serial batches (queued, or stopped in its place)."""
        return self.serial and self.state in (BatchState.QUEUED, BatchState.STOPPED)

    @property
    def lets_tasks_start(self) -> bool:
        """Finished batches let retried tasks run; queued and stopped ones hold theirs."""
        return self.state is BatchState.RUNNING or self.state.is_finished


def batch_not_found(batch_id: str) -> AiAdminError:
    return AiAdminError(
        f"No batch has the id {batch_id!r}.",
        code=ErrorCode.BATCH_NOT_FOUND,
        details={"batch_id": batch_id},
    )


def not_allowed(batch: Batch, action: str, why: str) -> AiAdminError:
    return AiAdminError(
        f"Batch {batch.batch_id} is {batch.state.value}: {why}.",
        code=ErrorCode.BATCH_ACTION_NOT_ALLOWED,
        details={"batch_id": batch.batch_id, "state": batch.state.value, "action": action},
    )


def waiting_line(batches: Iterable[Batch], queue: str) -> list[Batch]:
    """The serial batches of ``queue`` waiting for their turn (queued or stopped), in order."""
    return sorted(
        (b for b in batches if b.queue == queue and b.waits),
        key=lambda b: b.place,
    )


def next_to_promote(batches: Sequence[Batch], queue: str) -> Batch | None:
    """The batch that starts now in ``queue``: the head of its line, if it is queued and no
    serial batch of the queue is running."""
    if any(b.queue == queue and b.serial and b.state is BatchState.RUNNING for b in batches):
        return None
    line = waiting_line(batches, queue)
    if line and line[0].state is BatchState.QUEUED:
        return line[0]
    return None


def place_at(line: Sequence[Batch], batch: Batch, position: int) -> float:
    """The ``place`` that puts ``batch`` at ``position`` (1-based, clamped) of ``line``."""
    others = [b for b in line if b is not batch]
    index = max(0, min(position - 1, len(others)))
    if not others:
        return batch.place
    if index == 0:
        return others[0].place - 1.0
    if index == len(others):
        return others[-1].place + 1.0
    return (others[index - 1].place + others[index].place) / 2


def end_state(batch: Batch, statuses: Iterable[TaskStatus]) -> BatchState:
    """The state of a batch all of whose tasks have finished (with these statuses)."""
    if batch.cancelled:
        return BatchState.CANCELLED
    done = (TaskStatus.COMPLETED, TaskStatus.MERGED)
    return BatchState.COMPLETED if all(s in done for s in statuses) else BatchState.FAILED


def overall_progress(tasks: Sequence[DockerTask]) -> float:
    """One progress for the whole batch (0-100), each task weighted by its bytes where known
    (a task whose size is unknown weighs as much as the average known one)."""
    if not tasks:
        return 100.0
    sizes = [_bytes_of(t) for t in tasks]
    known = [s for s in sizes if s]
    fallback = sum(known) / len(known) if known else 1.0
    weights = [s or fallback for s in sizes]
    done = [100.0 if t.status.is_finished else t.progress for t in tasks]
    return round(sum(w * d for w, d in zip(weights, done, strict=True)) / sum(weights), 2)


def _bytes_of(task: DockerTask) -> float:
    detail = task.progress_detail
    return float(detail.bytes_total or 0) if detail is not None else 0.0
