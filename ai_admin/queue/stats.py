"""Queue statistics kept as counters, so reading them costs the same with 100 or 100,000 tasks.

Two kinds of numbers:
- gauges: how many stored tasks are in each (status, type, error code, retry state) class,
  moved by the engine at every transition and rebuilt from the store on start-up;
- counters: monotonic totals in the style of a production queue (enqueued, completed, ...),
  persisted with the tasks so they survive restarts.

And, since the agent started, what a histogram or a total by task type needs (``/metrics``
reads them at scrape time; nothing here knows Prometheus):
- each run's wait (queued → started) and run time (started → its outcome), as bucketed
  counts (``Durations``) by task type, and by outcome for the run time;
- tasks stored (submitted or merged) and tasks that reached a final status, by task type.

The engine tells ``run_started`` and ``run_ended`` about each run; both also write the run's
line to the log, with ``task_id`` and ``task_type`` (and ``error_code``) as fields.

What clients read of these numbers is built from them in ``stats_views.queue_statistics``.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from loguru import logger

from ai_admin.queue.models import DockerTask, TaskStatus

COUNTER_NAMES = (
    "enqueued",
    "dequeued",
    "completed",
    "failed",
    "timed_out",
    "cancelled",
    "retried",
    "merged",
    "wait_s_total",
    "processing_s_total",
)
ERROR_STATUSES = frozenset({TaskStatus.FAILED, TaskStatus.TIMEOUT})
_FINAL = frozenset(s.value for s in TaskStatus if s.is_finished)
_ERROR_OUTCOMES = frozenset({"failed", "timeout", "retried"})
_BUCKET_S = 60
_DAY_BUCKETS = 24 * 60
# Upper bounds (seconds) of the wait and run time histograms: from a pull the engine has cached
# (tens of milliseconds) to an hour-long build.
DURATION_BOUNDS_S = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    3600.0,
)  # fmt: skip


@dataclass(slots=True)
class Durations:
    """A histogram in plain Python: how many observations fell under each bound, and their sum."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BOUNDS_S) + 1))
    sum_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(DURATION_BOUNDS_S, seconds)] += 1
        self.sum_s += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at or under it)``, the last bound ``inf``."""
        out, seen = [], 0
        for bound, n in zip((*DURATION_BOUNDS_S, float("inf")), self.counts, strict=True):
            seen += n
            out.append((bound, seen))
        return out


def run_outcome(task: DockerTask) -> str:
    """How a run ended, read from the task once its outcome is applied: its final status, or
    ``retried`` (failed, to run again after a backoff), ``paused``, ``interrupted`` (the agent
    shut down; it runs again after the restart)."""
    if task.status is TaskStatus.PENDING:
        return "retried" if task.next_attempt_at is not None else "interrupted"
    return task.status.value


class TaskClass(NamedTuple):
    """What the gauges count a task under (a tuple: built at every state change)."""

    status: str
    task_type: str
    error_code: str | None
    has_retries: bool
    at_max_retries: bool

    @classmethod
    def of(cls, task: DockerTask) -> TaskClass:
        return cls(
            task.status.value,
            task.task_type.value,
            task.error_code if task.status in ERROR_STATUSES else None,
            task.retry_count > 0,
            task.retry_count >= (task.max_retries or 0),
        )


class QueueStats:
    def __init__(self) -> None:
        self.gauges: Counter[TaskClass] = Counter()
        self.counters: dict[str, float] = dict.fromkeys(COUNTER_NAMES, 0.0)
        self._created_per_minute: Counter[int] = Counter()
        # (minute it was summed in, last 24 h, last hour): re-summed once a minute at most
        self._recent: tuple[int, int, int] | None = None
        # Since the agent started (not stored):
        self.waits: dict[str, Durations] = {}  # by task type
        self.runs: dict[tuple[str, str], Durations] = {}  # by (task type, outcome)
        self.stored: Counter[str] = Counter()  # tasks stored (submitted or merged), by type
        self.finished: Counter[tuple[str, str]] = Counter()  # by (task type, final status)

    # -- updates -------------------------------------------------------------------------------

    def move(self, before: TaskClass | None, after: TaskClass | None) -> None:
        if before == after:
            return
        if before is not None:
            self.gauges[before] -= 1
            if self.gauges[before] <= 0:
                del self.gauges[before]
        if after is not None:
            self.gauges[after] += 1
        self._count_transition(before, after)

    def _count_transition(self, before: TaskClass | None, after: TaskClass | None) -> None:
        """The totals by type. A task is stored when it enters the gauges; one whose first
        write failed leaves them (the submit is undone) and is taken back, as ``enqueued`` is."""
        if before is None and after is not None:
            self.stored[after.task_type] += 1
        elif after is None and before is not None:
            self.stored[before.task_type] -= 1
        if (
            after is not None
            and after.status in _FINAL
            and (before is None or before.status != after.status)
        ):
            self.finished[after.task_type, after.status] += 1

    def run_started(self, task: DockerTask, now_s: float) -> None:
        """``task`` starts a run now: its wait counted and observed, and a line in the log."""
        wait_s = max(0.0, now_s - (task.queued_at or task.created_at))
        kind = task.task_type.value
        self.count("wait_s_total", wait_s)
        self.waits.setdefault(kind, Durations()).observe(wait_s)
        attempt = task.retry_count + 1
        # Keyword arguments are the record's fields (loguru captures them): no bind per run.
        logger.info(
            "task {} started ({}, attempt {}, waited {:.3f} s)",
            task.id,
            kind,
            attempt,
            wait_s,
            task_id=task.id,
            task_type=kind,
            attempt=attempt,
        )

    def run_ended(self, task: DockerTask, run_s: float) -> None:
        """``task``'s run ended after ``run_s`` and its outcome is applied: the run time
        observed by outcome, and a line in the log (with the error's code, never its text)."""
        kind, outcome = task.task_type.value, run_outcome(task)
        self.runs.setdefault((kind, outcome), Durations()).observe(max(0.0, run_s))
        code = task.error_code if outcome in _ERROR_OUTCOMES else None
        logger.info(
            "task {} {} after {:.3f} s{}",
            task.id,
            outcome,
            run_s,
            f": {code}" if code else "",
            task_id=task.id,
            task_type=kind,
            outcome=outcome,
            error_code=code,
            run_s=run_s,
        )

    def count(self, name: str, amount: float = 1.0) -> None:
        self.counters[name] += amount

    def created(self, at_s: float, n: int = 1) -> None:
        minute = int(at_s // _BUCKET_S)
        self._created_per_minute[minute] += n
        if self._recent is not None and self._recent[0] == minute:
            _, day, hour = self._recent
            self._recent = (minute, day + n, hour + n)
        else:
            self._recent = None
        if len(self._created_per_minute) > _DAY_BUCKETS + 60:
            self._prune(time.time())

    def _prune(self, now_s: float) -> None:
        oldest = int(now_s // _BUCKET_S) - _DAY_BUCKETS
        for minute in [m for m in self._created_per_minute if m < oldest]:
            del self._created_per_minute[minute]

    # -- reading -------------------------------------------------------------------------------

    def _created_since(self, since_s: float) -> int:
        first = int(since_s // _BUCKET_S)
        return sum(n for m, n in self._created_per_minute.items() if m >= first)

    def recent_activity(self, now_s: float | None = None) -> tuple[int, int]:
        """Tasks created in the last 24 hours and in the last hour (summed once a minute)."""
        now_s = time.time() if now_s is None else now_s
        minute = int(now_s // _BUCKET_S)
        if self._recent is None or self._recent[0] != minute:
            self._prune(now_s)
            day, hour = self._created_since(now_s - 86_400), self._created_since(now_s - 3_600)
            self._recent = (minute, day, hour)
        return self._recent[1], self._recent[2]

    def distribution(self, field: str) -> dict[str, int]:
        out: Counter[str] = Counter()
        for cls, n in self.gauges.items():
            key = getattr(cls, field)
            if key is not None:
                out[key] += n
        return dict(out)

    @property
    def finished_runs(self) -> float:
        """Runs that reached an outcome with a processing time: completed, failed, timed out."""
        c = self.counters
        return c["completed"] + c["failed"] + c["timed_out"]
