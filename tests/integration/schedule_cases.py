"""The schedule commands' cases for the tests that cover every command and every route:
``SCENARIOS`` for test_http_cmd.py's ``test_every_command_through_cmd``
(``SCENARIOS.update(schedule_cases.SCENARIOS)``), ``OPERATIONS`` and ``WRITES`` for
test_http_security.py, and ``NOT_FOUND`` for the catalogue replay, whose examples name a
schedule that does not exist (``commands/schedule_get.json`` ...): each answers 404 with the
code given here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from dockerenv import ImageCleanup
from http_client import Api

from ai_admin.errors import ErrorCode

SOME_SCHEDULE = "sch-0123456789abcdef"
_PULL = {"action": "docker_pull", "params": {"image_name": "127.0.0.1:1/cases/app", "tag": "1"}}
Scenario = Callable[[Api, ImageCleanup], Awaitable[None]]


async def _made(api: Api) -> str:
    data = await api.ok("schedule_create", name="case", cron="0 3 * * *", command=_PULL)
    return str(data["schedule_id"])


async def _create(api: Api, cleanup: ImageCleanup) -> None:
    data = await api.ok(
        "schedule_create", name="nightly", cron="0 3 * * 0", timezone="Europe/Paris", command=_PULL
    )
    assert data["command"] == _PULL
    assert (data["paused"], data["runs"], data["done"]) == (False, 0, False)
    assert data["next_run_at"] is not None
    await api.ok("schedule_delete", schedule_id=data["schedule_id"])


async def _list(api: Api, cleanup: ImageCleanup) -> None:
    sid = await _made(api)
    data = await api.ok("schedule_list")
    assert sid in {s["schedule_id"] for s in data["schedules"]}
    assert data["total"] == len(data["schedules"])
    await api.ok("schedule_delete", schedule_id=sid)


async def _get(api: Api, cleanup: ImageCleanup) -> None:
    sid = await _made(api)
    data = await api.ok("schedule_get", schedule_id=sid)
    assert (data["schedule_id"], data["last_task_id"], data["last_outcome"]) == (sid, None, None)
    await api.ok("schedule_delete", schedule_id=sid)


async def _pause(api: Api, cleanup: ImageCleanup) -> None:
    sid = await _made(api)
    data = await api.ok("schedule_pause", schedule_id=sid)
    assert (data["paused"], data["next_run_at"]) == (True, None)
    await api.ok("schedule_delete", schedule_id=sid)


async def _resume(api: Api, cleanup: ImageCleanup) -> None:
    sid = await _made(api)
    await api.ok("schedule_pause", schedule_id=sid)
    data = await api.ok("schedule_resume", schedule_id=sid)
    assert data["paused"] is False
    assert data["next_run_at"] is not None
    await api.ok("schedule_delete", schedule_id=sid)


async def _delete(api: Api, cleanup: ImageCleanup) -> None:
    sid = await _made(api)
    data = await api.ok("schedule_delete", schedule_id=sid)
    assert (data["schedule_id"], data["deleted"]) == (sid, True)
    gone = await api.cmd({"action": "schedule_get", "params": {"schedule_id": sid}})
    assert (gone.status, gone.code) == (404, ErrorCode.SCHEDULE_NOT_FOUND.value)


SCENARIOS: dict[str, Scenario] = {
    "schedule_create": _create,
    "schedule_list": _list,
    "schedule_get": _get,
    "schedule_pause": _pause,
    "schedule_resume": _resume,
    "schedule_delete": _delete,
}
_CREATE_BODY: dict[str, Any] = {"name": "n", "interval_s": 60, "command": _PULL}
OPERATIONS: list[tuple[str, str, Any]] = [
    ("GET", "/api/schedules", None),
    ("POST", "/api/schedules", _CREATE_BODY),
    ("GET", f"/api/schedules/{SOME_SCHEDULE}", None),
    ("DELETE", f"/api/schedules/{SOME_SCHEDULE}", None),
    ("POST", f"/api/schedules/{SOME_SCHEDULE}/pause", None),
    ("POST", f"/api/schedules/{SOME_SCHEDULE}/resume", None),
]
WRITES: list[tuple[str, str, Any]] = [op for op in OPERATIONS if op[0] != "GET"]
NOT_FOUND: dict[str, ErrorCode] = {
    name: ErrorCode.SCHEDULE_NOT_FOUND
    for name in ("schedule_get", "schedule_pause", "schedule_resume", "schedule_delete")
}
