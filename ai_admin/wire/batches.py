"""What the batch commands answer: a batch as the queue shows it (``BatchView``, defined by the
code that builds it) and the few shapes around it."""

from __future__ import annotations

from pydantic import Field

from ai_admin.queue.batch_control import BatchView
from ai_admin.queue.batches import BatchState
from ai_admin.wire.envelope import Wire

__all__ = ["BatchList", "BatchRemoved", "BatchSubmitted", "BatchView"]


class BatchSubmitted(Wire):
    """``batch_submit``: the batch and its tasks, in the order given."""

    batch_id: str
    task_ids: list[str]
    state: BatchState = Field(description="queued (waiting for its turn) or running.")


class BatchList(Wire):
    batches: list[BatchView] = Field(description="Newest first.")


class BatchRemoved(Wire):
    batch_id: str
    removed: bool
