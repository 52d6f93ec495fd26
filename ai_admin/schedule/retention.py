"""Retention: finished tasks deleted by age and by count, the space given back.

Run by the scheduler every ``housekeeping_interval_s``. A task is deleted once it ended more
than ``retention_max_age_s`` ago, or when more than ``retention_max_finished`` finished tasks
are stored (the oldest go first); a rule set to 0 or null is off. Live tasks (waiting, running,
paused) are never touched: only tasks in a finished status are. The pages freed go back to the
file system (the store's incremental vacuum), so the database file shrinks.

The delete goes through the engine (``delete_finished``), as ``queue_clear``'s does: the
statistics count the stored tasks again, and the credentials kept in memory for a manual retry
of a deleted failed task go with it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from loguru import logger

from ai_admin.config import Settings
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.store import QueueStore


@dataclass(frozen=True, slots=True)
class RetentionResult:
    deleted: int
    bytes_freed: int


async def apply_retention(
    engine: QueueEngine, store: QueueStore, settings: Settings, *, now_s: float | None = None
) -> RetentionResult:
    """Delete what the retention settings say is too old or too many; give the space back."""
    max_age = settings.retention_max_age_s or None
    keep = settings.retention_max_finished or None
    if max_age is None and keep is None:
        return RetentionResult(0, 0)
    now = time.time() if now_s is None else now_s
    deleted = await engine.delete_finished(
        ended_before_s=None if max_age is None else now - max_age, keep_newest=keep
    )
    if not deleted:
        return RetentionResult(0, 0)
    freed = await store.reclaim_space()
    logger.info(
        "retention deleted {} finished task(s) and gave {:.1f} MB back to the file system",
        deleted,
        freed / 1_048_576,
    )
    return RetentionResult(deleted, freed)
