"""When a schedule fires: the trigger spec, crontab's weekdays, and the patterns the OpenAPI
document gives cron and at, which must never allow what the agent then refuses."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_admin.commands.schedule_commands import AT_PATTERN, CRON_PATTERN
from ai_admin.errors import InvalidParams
from ai_admin.schedule.spec import TriggerSpec, crontab_weekdays


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("*/2", "sun,tue,thu,sat"),
        ("0,6", "sun,sat"),
        ("*", "*"),
        ("mon-fri", "mon-fri"),
    ],
)
def test_crontab_weekdays_count_from_sunday(field: str, names: str) -> None:
    assert crontab_weekdays(field) == names


def test_day_of_week_zero_fires_on_a_sunday_in_its_time_zone() -> None:
    first = TriggerSpec(cron="30 2 * * 0", timezone="Asia/Tokyo").first_run()
    assert first is not None
    local = first.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert (local.strftime("%A"), local.hour, local.minute) == ("Sunday", 2, 30)


def test_an_interval_keeps_its_phase_from_its_start() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    first = TriggerSpec(interval_s=7).first_run(start)
    assert first is not None
    assert (first.timestamp() - start) % 7 == pytest.approx(0, abs=1e-3)


def test_an_at_without_offset_is_read_in_its_time_zone() -> None:
    spec = TriggerSpec(at="2030-06-01T12:00:00", timezone="Europe/Paris")
    assert spec.first_run() == datetime(2030, 6, 1, 10, 0, tzinfo=UTC)
    assert TriggerSpec(at="2001-01-01T00:00:00Z").first_run() is None  # past


@settings(max_examples=300, deadline=None)
@given(st.from_regex(CRON_PATTERN, fullmatch=True))
def test_every_cron_the_document_allows_is_taken(cron: str) -> None:
    TriggerSpec(cron=cron).trigger()


@settings(max_examples=300, deadline=None)
@given(st.from_regex(AT_PATTERN, fullmatch=True), st.sampled_from(["UTC", "Pacific/Kiritimati"]))
def test_every_at_the_document_allows_is_taken(at: str, zone: str) -> None:
    TriggerSpec(at=at, timezone=zone).first_run()


def test_every_time_zone_the_document_lists_is_taken() -> None:
    for zone in sorted(zoneinfo.available_timezones()):
        TriggerSpec(cron="0 3 * * *", timezone=zone).trigger()


@pytest.mark.parametrize(
    "text", ["61 * * * *", "* * *", "*/0 * * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *"]
)
def test_a_cron_outside_the_pattern_is_refused_by_the_model(text: str) -> None:
    assert not re.fullmatch(CRON_PATTERN, text)


def test_errors_name_the_field() -> None:
    with pytest.raises(InvalidParams) as info:
        TriggerSpec(cron="0 0 31 13 *")
    assert info.value.details["errors"][0]["field"] == "params.cron"
