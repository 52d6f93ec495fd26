"""What the schedules' firings did since the agent started, for ``/metrics``.

A firing's lateness runs from the time it was due (APScheduler's scheduled run time; the latest
one when missed firings coalesce) to the moment it begins, after its turn on the loop
(``pacing``): the figure an operator watches when many schedules are due together.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, get_args

from ai_admin.queue.stats import Durations

# folded: due again before its last firing began, and folded into it (see pacing)
FiringOutcome = Literal["submitted", "merged", "refused", "folded"]
FIRING_OUTCOMES: tuple[FiringOutcome, ...] = get_args(FiringOutcome)


@dataclass(slots=True)
class FiringStats:
    outcomes: Counter[FiringOutcome] = field(default_factory=Counter)
    missed: int = 0  # skipped: later than the grace time
    lateness: Durations = field(default_factory=Durations)
