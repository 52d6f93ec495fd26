"""Exponential backoff with jitter, capped."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_admin.queue.retry_policy import RetryPolicy


def test_without_jitter_the_delay_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_s=2.0, factor=2.0, cap_s=20.0, jitter=0.0)
    assert [policy.delay_s(n) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]


def test_the_first_retry_waits_the_base_delay() -> None:
    assert RetryPolicy(base_s=0.5, jitter=0.0).delay_s(1) == 0.5
    assert RetryPolicy(base_s=0.5, jitter=0.0).delay_s(0) == 0.5


def test_a_seeded_rng_gives_the_same_delays() -> None:
    policy = RetryPolicy(base_s=1.0, factor=3.0, cap_s=100.0, jitter=0.5)
    first = [policy.delay_s(n, random.Random(42)) for n in range(1, 6)]
    second = [policy.delay_s(n, random.Random(42)) for n in range(1, 6)]
    assert first == second
    assert first != [policy.delay_s(n, random.Random(43)) for n in range(1, 6)]


@settings(deadline=None)  # a loaded CI machine must not fail an example for slowness
@given(
    base=st.floats(0, 10),
    factor=st.floats(1, 4),
    extra_cap=st.floats(0, 100),
    jitter=st.floats(0, 1),
    retry=st.integers(1, 40),
    seed=st.integers(0, 2**32),
)
def test_the_delay_stays_within_the_jitter_band_and_the_cap(
    base: float, factor: float, extra_cap: float, jitter: float, retry: int, seed: int
) -> None:
    policy = RetryPolicy(base_s=base, factor=factor, cap_s=base + extra_cap, jitter=jitter)
    nominal = min(policy.cap_s, base * factor ** (retry - 1))
    delay = policy.delay_s(retry, random.Random(seed))
    assert 0 <= delay <= policy.cap_s
    assert delay >= nominal * (1 - jitter) - 1e-9
    assert delay <= nominal * (1 + jitter) + 1e-9


def test_the_defaults_match_the_documented_schedule() -> None:
    policy = RetryPolicy(jitter=0.0)
    assert [policy.delay_s(n) for n in (1, 2, 3, 9, 10)] == [2.0, 4.0, 8.0, 300.0, 300.0]


@pytest.mark.parametrize("jitter", [0.0, 0.2, 1.0])
def test_jitter_never_makes_a_delay_negative(jitter: float) -> None:
    policy = RetryPolicy(base_s=1.0, jitter=jitter)
    rng = random.Random(3)
    assert all(policy.delay_s(1, rng) >= 0 for _ in range(200))


class _Edge(random.Random):
    """An rng whose jitter always lands on one edge of the band."""

    def __init__(self, *, top: bool) -> None:
        super().__init__(0)
        self.top = top

    def uniform(self, a: float, b: float) -> float:
        return b if self.top else a


def test_each_step_is_bounded_from_above_and_below_and_the_cap_holds_with_jitter() -> None:
    # Pinned exactly, both edges: a step late (or early), a band off-centre, jitter lost at
    # the cap, or a delay past the cap all change a number here.
    policy = RetryPolicy(base_s=2.0, factor=2.0, cap_s=9.0, jitter=0.25)
    lowest = [policy.delay_s(n, _Edge(top=False)) for n in range(1, 6)]
    highest = [policy.delay_s(n, _Edge(top=True)) for n in range(1, 6)]
    assert lowest == pytest.approx([1.5, 3.0, 6.0, 6.75, 6.75])  # at the cap: still spread
    assert highest == pytest.approx([2.5, 5.0, 9.0, 9.0, 9.0])  # 8 * 1.25 = 10: capped at 9
