"""A transfer's rate and time left, smoothed over time: ``RateMeter``.

Docker reports bytes in bursts: several layers' updates arrive in the same millisecond, then
nothing for a tenth of a second. A rate taken between two reports would jump between zero and
gigabytes per second, so the meter keeps an exponentially weighted average *over time*: an
interval of ``dt`` seconds that moved ``db`` bytes weighs ``1 - exp(-dt / tau_s)``, so a burst
adds about ``db / tau_s`` and fades with the time constant ``tau_s``. The average is divided by
the weight it has gathered (``1 - exp(-elapsed / tau_s)``), so the first estimate is the plain
average since the start instead of a value that creeps up from zero.

Pure arithmetic on the times and byte counts given: tested with a fake clock.
"""

from __future__ import annotations

import math

__all__ = ["TAU_S", "RateMeter"]

TAU_S = 3.0  # seconds: how long a change of pace takes to show (63 % of it after TAU_S)


class RateMeter:
    """Bytes per second of one transfer (one phase of a task), and the seconds it has left."""

    def __init__(self, tau_s: float = TAU_S) -> None:
        self._tau_s = tau_s
        self._last_s: float | None = None
        self._start(0)

    def _start(self, bytes_done: int) -> None:
        self._first_bytes = self._last_bytes = bytes_done
        self._average = 0.0  # the weighted average of the rate, not yet divided by its weight
        self._weight = 0.0
        # The average and weight before the last interval, and where that interval began: a
        # report in the same instant as the last one extends that interval instead of
        # starting one of no length.
        self._before: tuple[float, float, float, int] | None = None

    def update(self, now_s: float, bytes_done: int) -> None:
        """Account for ``bytes_done`` (a running total) reported at ``now_s``.

        The first report starts the clock (with what it reports in that instant). Several
        reports in one instant count as one; a total that goes down means the transfer started
        over, so the meter does too.
        """
        last_s = self._last_s
        if last_s is None or bytes_done < self._last_bytes:
            self._last_s = now_s
            self._start(bytes_done)
            return
        if now_s > last_s:
            self._before = (self._average, self._weight, last_s, self._last_bytes)
        elif self._before is None or now_s < last_s:
            if now_s == last_s:  # still the first instant: the clock starts from here
                self._start(bytes_done)
            return
        average, weight, since_s, since_bytes = self._before
        dt = now_s - since_s
        kept = math.exp(-dt / self._tau_s)
        self._average = kept * average + (1.0 - kept) * ((bytes_done - since_bytes) / dt)
        self._weight = kept * weight + (1.0 - kept)
        self._last_s, self._last_bytes = now_s, bytes_done

    @property
    def rate_bps(self) -> float | None:
        """The smoothed rate; None until bytes have moved over some time."""
        if self._last_bytes <= self._first_bytes or self._weight <= 0.0:
            return None
        return self._average / self._weight

    def eta_s(self, bytes_total: int | None) -> float | None:
        """Seconds left at the current rate: 0 once everything moved, None if unknown."""
        if bytes_total is None or bytes_total <= 0:
            return None
        left = bytes_total - self._last_bytes
        if left <= 0:
            return 0.0
        rate = self.rate_bps
        return left / rate if rate else None
