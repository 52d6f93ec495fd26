"""A task as clients see it: ``TaskView`` (the record) and ``TaskSummary`` (its status).

Both are defined and built by the queue (``ai_admin.queue.views``); the wire layer names them
beside the other shapes that cross the doors.
"""

from __future__ import annotations

from ai_admin.queue.views import (
    ErrorInfoView,
    Priority,
    RetryView,
    StatusView,
    TaskErrorView,
    TaskSummary,
    TaskView,
    Timing,
)

__all__ = [
    "ErrorInfoView",
    "Priority",
    "RetryView",
    "StatusView",
    "TaskErrorView",
    "TaskSummary",
    "TaskView",
    "Timing",
]
