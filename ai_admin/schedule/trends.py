"""Trends per hour and per day, computed from snapshots of the queue's counters.

Plain functions of the snapshots (``(taken at, counters)``, oldest first): what happened
between two snapshots is their difference, counted in the hour (or day, UTC) the later one
falls in. Counters only grow; if they go back (the store was replaced), that interval is left
out rather than counted as negative work.

Per bucket: ``submitted`` (tasks queued, merged ones included), ``completed``, ``failed``
(failed and timed out), the mean wait (queued → started) of the runs that started, and the mean
run time of the runs that ended (null when there were none).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import pairwise

from pydantic import Field

from ai_admin.queue.views import View

__all__ = ["DAY_S", "HOUR_S", "Snapshot", "TrendPoint", "Trends", "buckets", "intervals", "trends"]

HOUR_S = 3_600
DAY_S = 86_400
Snapshot = tuple[float, dict[str, float]]
_COUNTED = (
    "enqueued",
    "merged",
    "dequeued",
    "completed",
    "failed",
    "timed_out",
    "wait_s_total",
    "processing_s_total",
)


class TrendPoint(View):
    start: float = Field(description="The hour's or day's start (Unix seconds, UTC).")
    submitted: int = Field(description="Tasks submitted (merged ones included).")
    completed: int
    failed: int = Field(description="Tasks that failed or timed out.")
    mean_wait_s: float | None = Field(description="Mean wait of the runs that started.")
    mean_run_s: float | None = Field(description="Mean run time of the runs that ended.")


class Trends(View):
    hourly: list[TrendPoint] = Field(description="Oldest first; hours with activity only.")
    daily: list[TrendPoint] = Field(description="Oldest first; days with activity only.")
    since: float | None = Field(description="The first snapshot used; null: none kept yet.")


def intervals(snapshots: Sequence[Snapshot]) -> Iterator[tuple[float, Counter[str]]]:
    """(end, what the counters moved by) between each snapshot and the next."""
    for (_, before), (end, after) in pairwise(snapshots):
        moved = Counter({k: after.get(k, 0.0) - before.get(k, 0.0) for k in _COUNTED})
        if any(v < 0 for v in moved.values()):
            continue  # the counters went back: a new store, not negative work
        yield end, moved


def buckets(snapshots: Sequence[Snapshot], width_s: int) -> list[TrendPoint]:
    """The movements summed per bucket of ``width_s`` seconds, by the bucket an interval's
    end falls in; buckets where nothing moved are left out."""
    sums: dict[int, Counter[str]] = {}
    for end, moved in intervals(snapshots):
        sums.setdefault(int(end // width_s) * width_s, Counter()).update(moved)
    return [_point(start, c) for start, c in sorted(sums.items()) if any(c.values())]


def _point(start: int, c: Counter[str]) -> TrendPoint:
    ended = c["completed"] + c["failed"] + c["timed_out"]
    return TrendPoint(
        start=float(start),
        submitted=round(c["enqueued"] + c["merged"]),
        completed=round(c["completed"]),
        failed=round(c["failed"] + c["timed_out"]),
        mean_wait_s=_mean(c["wait_s_total"], c["dequeued"]),
        mean_run_s=_mean(c["processing_s_total"], ended),
    )


def _mean(total: float, n: float) -> float | None:
    return round(total / n, 3) if n > 0 else None


def trends(snapshots: Sequence[Snapshot]) -> Trends:
    """Per hour and per day, from ``snapshots`` (oldest first; the last may be the counters
    now, so the current hour counts what happened since the last snapshot)."""
    return Trends(
        hourly=buckets(snapshots, HOUR_S),
        daily=buckets(snapshots, DAY_S),
        since=snapshots[0][0] if snapshots else None,
    )
