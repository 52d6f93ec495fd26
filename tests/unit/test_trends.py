"""Trends per hour and per day from counter snapshots: plain functions, plain numbers."""

from __future__ import annotations

from ai_admin.schedule.trends import DAY_S, HOUR_S, TrendPoint, buckets, intervals, trends

H = float(HOUR_S)


def snap(at: float, **counters: float) -> tuple[float, dict[str, float]]:
    return at, counters


def test_an_interval_counts_in_the_hour_its_end_falls_in() -> None:
    points = buckets(
        [
            snap(0.5 * H, enqueued=10, completed=2, dequeued=4, wait_s_total=8.0),
            snap(0.9 * H, enqueued=15, completed=6, failed=1, dequeued=9, wait_s_total=18.0,
                 processing_s_total=21.0),
            snap(1.2 * H, enqueued=16, merged=2, completed=7, failed=1, timed_out=1, dequeued=10,
                 wait_s_total=20.0, processing_s_total=30.0),
        ],
        HOUR_S,
    )  # fmt: skip
    assert points == [
        TrendPoint(start=0.0, submitted=5, completed=4, failed=1, mean_wait_s=2.0,
                   mean_run_s=4.2),
        TrendPoint(start=H, submitted=3, completed=1, failed=1, mean_wait_s=2.0,
                   mean_run_s=4.5),
    ]  # fmt: skip


def test_quiet_hours_are_left_out_and_means_without_runs_are_null() -> None:
    points = buckets(
        [
            snap(0, enqueued=1),
            snap(H, enqueued=1),
            snap(2 * H, enqueued=1),
            snap(3 * H, enqueued=4),
        ],
        HOUR_S,
    )
    assert points == [
        TrendPoint(start=3 * H, submitted=3, completed=0, failed=0, mean_wait_s=None,
                   mean_run_s=None),
    ]  # fmt: skip


def test_counters_that_go_back_are_a_new_store_not_negative_work() -> None:
    moved = list(intervals([snap(0, enqueued=100), snap(60, enqueued=3), snap(120, enqueued=5)]))
    assert [(end, m["enqueued"]) for end, m in moved] == [(120, 2)]


def test_days_sum_their_hours() -> None:
    snaps = [snap(i * H, enqueued=float(i * i), completed=float(i)) for i in range(0, 50)]
    result = trends(snaps)
    assert [p.start for p in result.daily] == [0.0, float(DAY_S), float(2 * DAY_S)]
    assert sum(p.submitted for p in result.daily) == sum(p.submitted for p in result.hourly)
    assert sum(p.submitted for p in result.hourly) == 49 * 49
    assert sum(p.completed for p in result.daily) == 49
    assert result.since == 0.0


def test_no_snapshots_no_trends() -> None:
    assert trends([]).model_dump() == {"hourly": [], "daily": [], "since": None}
    assert trends([snap(5, enqueued=1)]).hourly == []
