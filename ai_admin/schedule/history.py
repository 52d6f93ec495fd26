"""History: the queue's counters kept every ``stats_snapshot_interval_s`` for
``stats_history_max_age_s``, from which ``trends`` computes per-hour and per-day figures.

A snapshot is the counters as they are (totals since the store was made: ``enqueued``,
``completed``, ``failed``, ``wait_s_total``, ...), read from the queue's statistics; what
happened between two snapshots is their difference.
"""

from __future__ import annotations

import time

from ai_admin.config import Settings
from ai_admin.queue.stats import QueueStats
from ai_admin.queue.store import QueueStore
from ai_admin.schedule.trends import Snapshot


def current(stats: QueueStats, now_s: float | None = None) -> Snapshot:
    """The counters now, as a snapshot."""
    return (time.time() if now_s is None else now_s, dict(stats.counters))


async def take_snapshot(store: QueueStore, stats: QueueStats, settings: Settings) -> None:
    """Keep the counters now; forget the snapshots older than the history keeps."""
    at, counters = current(stats)
    await store.add_snapshot(at, counters)
    await store.delete_snapshots(at - settings.stats_history_max_age_s)


async def history(store: QueueStore, stats: QueueStats, since_s: float) -> list[Snapshot]:
    """The snapshots since ``since_s``, and the counters now as the last one."""
    kept = await store.snapshots(since_s)
    return [(at, {k: float(v) for k, v in doc.items()}) for at, doc in kept] + [current(stats)]
