"""The queue statistics (``QueueStatistics``, what ``get_queue_stats`` answers) and their parts.

Defined and built by the queue (``ai_admin.queue.stats_views``) from its counters, the class
``ai_admin.queue.stats.QueueStats``; the wire layer names them beside the other shapes that
cross the doors.
"""

from __future__ import annotations

from ai_admin.queue.stats_views import (
    Counters,
    Distributions,
    Performance,
    QueueState,
    QueueStatistics,
    QueueSummary,
    RecentActivity,
    Retries,
    SetAside,
    SetAsideTask,
)

__all__ = [
    "Counters",
    "Distributions",
    "Performance",
    "QueueState",
    "QueueStatistics",
    "QueueSummary",
    "RecentActivity",
    "Retries",
    "SetAside",
    "SetAsideTask",
]
