"""The answers of the schedule commands. A schedule's view (``ScheduleView``) is defined by the
schedule layer, which builds it; this module re-exports it beside the answers made of it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ai_admin.schedule.model import FiringError, LastOutcome, ScheduleView
from ai_admin.wire.envelope import Wire

__all__ = ["FiringError", "LastOutcome", "ScheduleDeleted", "ScheduleList", "ScheduleView"]


class ScheduleList(Wire):
    schedules: list[ScheduleView] = Field(description="Oldest first.")
    total: int


class ScheduleDeleted(Wire):
    schedule_id: str
    deleted: Literal[True]
    schedule: ScheduleView = Field(description="The schedule as it was; its tasks stay.")
