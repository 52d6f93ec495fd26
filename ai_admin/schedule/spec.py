"""When a schedule fires: exactly one of a five-field cron expression, an interval in seconds,
or a single ISO 8601 time, read in an IANA time zone (UTC by default).

Cron reads as crontab does (day of week 0 or 7 is Sunday), with one difference that is
APScheduler's: when both day of month and day of week are restricted, a firing needs both.

``TriggerSpec`` holds them as the client gave them (so they are stored and shown unchanged) and
``trigger()`` makes the APScheduler trigger. Every mistake is ``VALIDATION_INVALID_PARAMS``
naming the field (``params.cron``, ``params.timezone``, ...), found when the schedule is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ai_admin.errors import InvalidParams

MIN_INTERVAL_S = 1.0  # a schedule is not a busy loop
MAX_INTERVAL_S = 366 * 86_400.0
WHEN_FIELDS = ("cron", "interval_s", "at")


def refused(field: str, problem: str, **details: object) -> InvalidParams:
    """``VALIDATION_INVALID_PARAMS`` naming ``params.<field>``, in the shape every door uses."""
    return InvalidParams(
        f"Invalid parameters: params.{field}: {problem}",
        details={"errors": [{"field": f"params.{field}", "problem": problem}], **details},
    )


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field (0 or 7 is Sunday) as APScheduler reads it (by name: its
    numbers start from Monday). ``*/2`` is Sunday, Tuesday, Thursday, Saturday, as in cron."""
    parts: list[str] = []
    for item in field.split(","):
        every = re.fullmatch(r"\*/([0-9]+)", item)
        span = re.fullmatch(r"([0-7])-([0-7])", item)
        if item == "*":
            return item
        if every and int(every.group(1)) > 0:
            parts += [_WEEKDAYS[i] for i in range(0, 7, int(every.group(1)))]
        elif re.fullmatch(r"[0-7]", item):
            parts.append(_WEEKDAYS[int(item) % 7])
        elif span and int(span.group(1)) < int(span.group(2)):
            first, last = int(span.group(1)), int(span.group(2))
            parts += [_WEEKDAYS[i % 7] for i in range(first, last + 1)]
        else:
            parts.append(item)  # a name or a form APScheduler reads (or refuses) itself
    return ",".join(dict.fromkeys(parts))


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    cron: str | None = None
    interval_s: float | None = None
    at: str | None = None  # ISO 8601; without an offset, a time in ``timezone``
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        given = [name for name in WHEN_FIELDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise refused(
                "cron" if not given else given[1],
                "give exactly one of cron, interval_s and at"
                + (f" (got {', '.join(given)})" if given else ""),
            )
        self.zone()  # each part checked now: a stored spec always makes a trigger
        self.trigger()

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise refused(
                "timezone",
                f"{self.timezone[:64]!r} is not an IANA time zone name (e.g. UTC, Europe/Paris)",
            ) from None

    def at_time(self) -> datetime | None:
        """``at`` as an aware time (``timezone`` when it names no offset)."""
        if self.at is None:
            return None
        try:
            when = datetime.fromisoformat(self.at)
        except ValueError:
            raise refused(
                "at", f"{self.at[:64]!r} is not an ISO 8601 time (e.g. 2026-12-24T18:00:00+01:00)"
            ) from None
        return when if when.tzinfo is not None else when.replace(tzinfo=self.zone())

    def trigger(self, start_s: float | None = None) -> BaseTrigger:
        """The APScheduler trigger; ``start_s``: when an interval counts from (its phase)."""
        zone = self.zone()
        if self.cron is not None:
            if len(self.cron.split()) != 5:
                raise refused(
                    "cron",
                    "a cron expression has five fields: minute hour day-of-month month "
                    "day-of-week (e.g. '0 3 * * *')",
                )
            minute, hour, day, month, weekday = self.cron.split()
            try:
                return CronTrigger(
                    minute=minute,
                    hour=hour,
                    day=day,
                    month=month,
                    day_of_week=crontab_weekdays(weekday),
                    timezone=zone,
                )
            except ValueError as exc:
                raise refused("cron", f"{self.cron[:64]!r}: {exc}") from None
        if self.interval_s is not None:
            if not MIN_INTERVAL_S <= self.interval_s <= MAX_INTERVAL_S:
                raise refused(
                    "interval_s",
                    f"must be between {MIN_INTERVAL_S:g} and {MAX_INTERVAL_S:g} seconds",
                )
            start = None if start_s is None else datetime.fromtimestamp(start_s, zone)
            return IntervalTrigger(seconds=self.interval_s, start_date=start, timezone=zone)
        return DateTrigger(run_date=self.at_time(), timezone=zone)

    def first_run(self, start_s: float | None = None) -> datetime | None:
        """When it fires next from now (an interval counting from ``start_s``); None if never
        (an ``at`` already past)."""
        now = datetime.now(UTC)
        fire: datetime | None = self.trigger(start_s).get_next_fire_time(None, now)
        if self.at is not None and fire is not None and fire < now:
            return None
        return fire
