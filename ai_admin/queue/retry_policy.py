"""Exponential backoff with jitter for automatic retries of transient failures."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 2.0
    factor: float = 2.0
    cap_s: float = 300.0
    jitter: float = 0.2  # fraction of the delay, spread evenly above and below it

    def delay_s(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Delay before retry ``retry_number`` (1 for the first retry)."""
        delay = min(self.cap_s, self.base_s * self.factor ** max(0, retry_number - 1))
        if self.jitter:
            spread = delay * self.jitter
            delay += (rng or random).uniform(-spread, spread)
        return max(0.0, min(self.cap_s, delay))
