"""``RateMeter``: a transfer's smoothed rate and time left, on a fake clock (times are given).

A steady transfer reads its true rate however it is reported (bursts of reports in one instant,
irregular intervals); Docker's bursty reports do not make the rate jump; a change of pace shows
within a few time constants; no rate before bytes move; the time left falls to 0 at the end.
"""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_admin.queue.rate import TAU_S, RateMeter

MB = 1_000_000


def test_no_rate_before_bytes_move() -> None:
    meter = RateMeter()
    assert meter.rate_bps is None
    meter.update(0.0, 0)
    assert meter.rate_bps is None  # the first report only starts the clock
    meter.update(1.0, 0)
    assert meter.rate_bps is None  # time passed, nothing moved
    assert meter.eta_s(10 * MB) is None
    meter.update(2.0, MB)
    assert meter.rate_bps is not None
    assert meter.rate_bps > 0


def test_the_first_estimate_is_the_plain_average_not_a_value_creeping_up_from_zero() -> None:
    meter = RateMeter()
    meter.update(10.0, 0)
    meter.update(10.5, 2 * MB)
    assert meter.rate_bps == pytest.approx(4 * MB)


@settings(deadline=None)
@given(
    rate=st.floats(min_value=100_000, max_value=1e9),
    steps=st.lists(
        st.tuples(st.just(0.0) | st.floats(min_value=0.01, max_value=2.0), st.integers(1, 5)),
        min_size=1,
        max_size=60,
    ),
)
def test_a_steady_transfer_reads_its_rate_however_it_is_reported(
    rate: float, steps: list[tuple[float, int]]
) -> None:
    """Reports at irregular times, several in one instant (layers reported together): the
    bytes of an instant add up until time moves, so the rate is exact."""
    meter = RateMeter()
    now, done = 100.0, 0
    meter.update(now, done)
    moved_any = False
    for dt, reports in steps:
        now += dt
        target = int(rate * (now - 100.0))
        for k in range(1, reports + 1):  # the instant's bytes in ``reports`` pieces
            meter.update(now, done + (target - done) * k // reports)
        moved_any = moved_any or target > done
        done = target
    if not moved_any:
        assert meter.rate_bps is None
        return
    assert meter.rate_bps is not None
    # Whole bytes: each interval (0.01 s or more) may read up to 100 bytes/s off.
    assert meter.rate_bps == pytest.approx(rate, rel=2e-3)


def test_docker_bursts_do_not_make_the_rate_jump() -> None:
    """1 MB a second, reported as ten 0.1 MB updates a millisecond apart, once a second: a
    rate taken between two reports would read 100 MB/s; the meter stays near 1 MB/s."""
    meter = RateMeter()
    done, readings = 0, []
    meter.update(0.0, 0)
    for second in range(1, 31):
        for k in range(10):
            done += MB // 10
            meter.update(second + k / 1000, done)
            readings.append(meter.rate_bps)
    settled = [r for r in readings[50:] if r is not None]
    assert all(0.5 * MB < r < 2 * MB for r in settled), (min(settled), max(settled))


def test_a_change_of_pace_shows_within_a_few_time_constants() -> None:
    meter = RateMeter()
    now, done = 0.0, 0
    meter.update(now, done)
    for _ in range(100):  # 10 s at 10 MB/s
        now, done = now + 0.1, done + MB
        meter.update(now, done)
    assert meter.rate_bps == pytest.approx(10 * MB)
    slow_s = 3 * TAU_S
    for _ in range(round(slow_s / 0.1)):  # then 1 MB/s for three time constants
        now, done = now + 0.1, done + MB // 10
        meter.update(now, done)
    assert meter.rate_bps is not None
    # The old pace weighs exp(-3) of what it weighed (less its own first seconds' share).
    old = math.exp(-slow_s / TAU_S) - math.exp(-now / TAU_S)
    new = 1 - math.exp(-slow_s / TAU_S)
    assert meter.rate_bps == pytest.approx((10 * MB * old + MB * new) / (old + new), rel=1e-6)
    assert meter.rate_bps < 1.5 * MB


def test_time_left_falls_to_zero_at_the_end() -> None:
    meter = RateMeter()
    total = 20 * MB
    meter.update(0.0, 0)
    etas = []
    for i in range(1, 21):  # 1 MB per 0.1 s: 2 s in all
        meter.update(i / 10, i * MB)
        etas.append(meter.eta_s(total))
    assert etas[0] == pytest.approx(1.9)
    assert all(a is not None and b is not None and b < a for a, b in pairwise(etas))
    assert etas[-1] == 0.0
    assert meter.eta_s(None) is None  # no total, no time left
    assert meter.eta_s(0) is None


def test_a_total_that_goes_down_starts_the_meter_over() -> None:
    meter = RateMeter()
    meter.update(0.0, 0)
    meter.update(1.0, 50 * MB)
    meter.update(2.0, 0)  # the transfer started over (a new attempt at the same phase)
    assert meter.rate_bps is None
    meter.update(3.0, MB)
    assert meter.rate_bps == pytest.approx(MB)
