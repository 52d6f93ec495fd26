"""Recent activity is summed once a minute at most and still counts every new task."""

from __future__ import annotations

import time

from ai_admin.queue.stats import QueueStats


def _recent(stats: QueueStats) -> dict[str, int]:
    snapshot = stats.snapshot(max_concurrent=1, running=0, queue_size=0)
    activity: dict[str, int] = snapshot["recent_activity"]
    return activity


def test_recent_activity_counts_old_and_new_tasks_by_window() -> None:
    stats = QueueStats()
    now = time.time()
    stats.created(now - 2 * 3600)  # inside the day, outside the hour
    stats.created(now - 2 * 86_400)  # outside both
    assert _recent(stats) == {"last_24_hours": 1, "last_hour": 0}
    for _ in range(3):  # after the sums are cached: each new task still counts at once
        stats.created(time.time())
    assert _recent(stats) == {"last_24_hours": 4, "last_hour": 3}
    stats.created(now - 1800, n=2)  # an older minute: the cache is rebuilt, not patched
    assert _recent(stats) == {"last_24_hours": 6, "last_hour": 5}
