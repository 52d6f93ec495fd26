"""Schedules and retention against a real agent (``ai-admin serve``) and the real test registry:
a schedule firing every second pulls a real image, shows it in ``schedule_get``, stops while
paused, survives a restart and a ``kill -9`` with its state; firings missed while the agent was
down coalesce into one; the same schedule paused, resumed and deleted by several clients at
once ends consistent; retention removes only old and surplus finished tasks and the database
file shrinks; every change is an event on ``/api/events``; MCP lists the tools."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from agent_process import OPERATOR_TOKEN, AgentProcess, launch
from dockerenv import ImageCleanup, only_in_registry
from http_client import Api, client

from ai_admin.errors import ErrorCode
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore
from ai_admin.schedule.model import RECORD_KIND
from ai_admin.wire.schedules import ScheduleList, ScheduleView

pytestmark = pytest.mark.docker
WAIT_S = 60.0
DB = "ai-admin.db"


@pytest.fixture
def image(
    docker_client: docker.DockerClient, image_cleanup: ImageCleanup, open_registry: str
) -> tuple[str, str]:
    """(repository, tag) of a small image only in the open test registry."""
    repository = f"{open_registry}/sched-{uuid.uuid4().hex[:8]}"
    tag, _, _ = only_in_registry(docker_client, image_cleanup, repository, 1)
    return repository, tag


@contextlib.contextmanager
def running(data_dir: Path, **env: str) -> Iterator[AgentProcess]:
    agent = launch(data_dir, env={"AI_ADMIN_SHUTDOWN_GRACE_S": "5", **env})
    try:
        yield agent
    finally:
        agent.stop()


@contextlib.asynccontextmanager
async def api_of(agent: AgentProcess) -> AsyncIterator[Api]:
    async with client(agent.url, OPERATOR_TOKEN) as api:
        yield api


async def get(api: Api, schedule_id: str) -> ScheduleView:
    answer = await api.request("GET", f"/api/schedules/{schedule_id}")
    assert answer.status == 200, answer.describe()
    return ScheduleView.model_validate(answer.data)


async def until_runs(api: Api, schedule_id: str, runs: int) -> ScheduleView:
    deadline = time.monotonic() + WAIT_S
    while (view := await get(api, schedule_id)).runs < runs:
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.1)  # polling the agent with a deadline
    return view


async def until_outcome(api: Api, schedule_id: str, status: TaskStatus) -> ScheduleView:
    deadline = time.monotonic() + WAIT_S
    while True:
        view = await get(api, schedule_id)
        if view.last_outcome is not None and view.last_outcome.status is status:
            return view
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.1)  # polling the agent with a deadline


def pull_schedule(repository: str, tag: str, **when: Any) -> dict[str, Any]:
    return {
        "name": "pull every second",
        "command": {"action": "docker_pull", "params": {"image_name": repository, "tag": tag}},
        **when,
    }


async def test_a_schedule_pulls_for_real_pauses_and_survives_restart_and_kill_9(
    tmp_path: Path, image: tuple[str, str]
) -> None:
    repository, tag = image
    data = tmp_path / "agent"
    with running(data) as agent:
        async with api_of(agent) as api:
            made = await api.request(
                "POST", "/api/schedules", json_body=pull_schedule(repository, tag, interval_s=1)
            )
            assert made.status == 200, made.describe()
            sid = ScheduleView.model_validate(made.data).schedule_id

            view = await until_outcome(api, sid, TaskStatus.COMPLETED)
            assert view.last_task_id is not None
            task = await api.task(view.last_task_id)
            assert task["status"]["value"] == "completed"
            detailed = await api.ok("queue_task_status", task_id=view.last_task_id, detailed=True)
            assert detailed["task"]["schedule_id"] == sid
            assert detailed["task"]["params"] == {"image_name": repository, "tag": tag}

            paused = await api.request("POST", f"/api/schedules/{sid}/pause")
            assert ScheduleView.model_validate(paused.data).paused
            runs = (await get(api, sid)).runs
            await asyncio.sleep(3)  # three periods: a paused schedule makes no firing
            assert (await get(api, sid)).runs == runs
            resumed = await api.request("POST", f"/api/schedules/{sid}/resume")
            assert not ScheduleView.model_validate(resumed.data).paused
            before_restart = await until_runs(api, sid, runs + 1)

    with running(data) as agent:  # a clean restart
        async with api_of(agent) as api:
            after = await get(api, sid)
            assert after.runs >= before_restart.runs
            assert after.created_at == before_restart.created_at
            assert after.last_outcome is not None
            assert after.last_outcome.status is not None
            fired = await until_runs(api, sid, after.runs + 1)
            before_kill = await until_outcome(api, sid, TaskStatus.COMPLETED)
            assert before_kill.runs >= fired.runs
        agent.proc.kill()  # kill -9: no shutdown at all
        agent.proc.wait()

    with running(data) as agent:
        async with api_of(agent) as api:
            survived = await get(api, sid)
            assert survived.runs >= before_kill.runs  # every firing it answered for is kept
            assert survived.last_task_id is not None
            assert (await api.task(survived.last_task_id))["task_id"] == survived.last_task_id
            await until_runs(api, sid, survived.runs + 2)  # and it goes on firing
            deleted = await api.request("DELETE", f"/api/schedules/{sid}")
            assert deleted.status == 200, deleted.describe()
            await api.refused(
                api.request("GET", f"/api/schedules/{sid}"), ErrorCode.SCHEDULE_NOT_FOUND, 404
            )


async def _move_next_run(db: Path, schedule_id: str, next_run_at: float) -> None:
    """As if the agent had been down since before ``next_run_at``."""
    store = SqliteStore(db)
    await store.open()
    try:
        record = (await store.load_records(RECORD_KIND))[schedule_id]
        await store.save_record(RECORD_KIND, schedule_id, {**record, "next_run_at": next_run_at})
    finally:
        await store.close()


async def test_firings_missed_while_the_agent_was_down_coalesce_into_one_pull(
    tmp_path: Path, image: tuple[str, str]
) -> None:
    repository, tag = image
    data = tmp_path / "agent"
    with running(data) as agent:
        async with api_of(agent) as api:
            made = await api.request(
                "POST", "/api/schedules", json_body=pull_schedule(repository, tag, interval_s=60)
            )
            sid = ScheduleView.model_validate(made.data).schedule_id
    await _move_next_run(data / DB, sid, time.time() - 10 * 60)  # ten firings missed

    with running(data) as agent:
        async with api_of(agent) as api:
            view = await until_outcome(api, sid, TaskStatus.COMPLETED)
            assert (view.runs, view.missed) == (1, 0)
            assert view.next_run_at is not None
            assert view.next_run_at > time.time() + 30  # the next one is a period away
            tasks = (await api.ok("queue_list_tasks", limit=100))["tasks"]
            assert [t["schedule_id"] for t in tasks] == [sid]  # one pull, not ten


async def test_several_clients_pausing_resuming_and_deleting_at_once_end_consistent(
    tmp_path: Path, image: tuple[str, str]
) -> None:
    repository, tag = image
    data = tmp_path / "agent"
    with running(data) as agent:
        async with api_of(agent) as first, api_of(agent) as second, api_of(agent) as third:
            made = await first.request(
                "POST", "/api/schedules", json_body=pull_schedule(repository, tag, interval_s=1)
            )
            sid = ScheduleView.model_validate(made.data).schedule_id
            kept = await first.request(
                "POST", "/api/schedules", json_body=pull_schedule(repository, tag, cron="0 3 * * *")
            )
            kept_id = ScheduleView.model_validate(kept.data).schedule_id

            async def toggle(api: Api, n: int) -> int:
                statuses = []
                for i in range(n):
                    action = "pause" if i % 2 else "resume"
                    answer = await api.request("POST", f"/api/schedules/{kept_id}/{action}")
                    statuses.append(answer.status)
                    answer = await api.request("POST", f"/api/schedules/{sid}/{action}")
                    statuses.append(answer.status)
                return statuses.count(200)

            async def delete(api: Api) -> int:
                return (await api.request("DELETE", f"/api/schedules/{sid}")).status

            results = await asyncio.gather(
                toggle(first, 20), toggle(second, 20), delete(third), delete(first)
            )
            assert sorted(results[2:]) == [200, 404]  # one delete wins, the other finds nothing
            final = await first.request("POST", f"/api/schedules/{kept_id}/pause")
            listed = ScheduleList.model_validate(
                (await second.request("GET", "/api/schedules")).data
            )
            assert [s.schedule_id for s in listed.schedules] == [kept_id]
            assert listed.schedules[0].paused
            assert ScheduleView.model_validate(final.data).next_run_at is None

    with running(data) as agent:  # what the store holds agrees
        async with api_of(agent) as api:
            listed = ScheduleList.model_validate((await api.request("GET", "/api/schedules")).data)
            assert [(s.schedule_id, s.paused) for s in listed.schedules] == [(kept_id, True)]


def _history(db: Path, old: int, recent: int) -> tuple[list[str], list[str]]:
    """A database as a busy agent leaves it: ``old`` tasks finished 40 days ago, ``recent``
    finished now, and two paused tasks created long ago (live: retention never touches them).
    Returns (the recent ids, the paused ids)."""
    long_ago = time.time() - 40 * 86_400

    def task(n: int, status: TaskStatus, at: float) -> DockerTask:
        made = DockerTask(
            task_type=TaskType.PULL,
            params={"image_name": f"127.0.0.1:1/old/{n}"},
            status=status,
            seq=n,
            logs=["a line of an old pull's log " * 60] * 3,
        )
        made.created_at = at
        if status.is_finished:
            made.completed_at = at + 1
        return made

    old_tasks = [task(n, TaskStatus.COMPLETED, long_ago + n) for n in range(old)]
    recent_tasks = [task(old + n, TaskStatus.FAILED, time.time() - 60) for n in range(recent)]
    paused = [task(old + recent + n, TaskStatus.PAUSED, long_ago - 86_400) for n in range(2)]

    async def write() -> None:
        store = SqliteStore(db)
        await store.open()
        try:
            everything = [*old_tasks, *recent_tasks, *paused]
            for start in range(0, len(everything), 1_000):
                await store.save(everything[start : start + 1_000])
        finally:
            await store.close()

    asyncio.run(write())
    return [t.id for t in recent_tasks], [t.id for t in paused]


def _file_bytes(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(os.path.getsize(p) for p in db.parent.glob(DB + "*"))


def test_retention_deletes_only_old_and_surplus_finished_tasks_and_the_file_shrinks(
    tmp_path: Path,
) -> None:
    data = tmp_path / "agent"
    data.mkdir()
    recent, paused = _history(data / DB, old=6_000, recent=60)
    full = _file_bytes(data / DB)
    env = {
        "AI_ADMIN_RETENTION_MAX_FINISHED": "50",  # the 60 recent ones are 10 too many
        "AI_ADMIN_HOUSEKEEPING_INTERVAL_S": "1",
    }

    async def check(agent: AgentProcess) -> None:
        async with api_of(agent) as api:
            deadline = time.monotonic() + WAIT_S
            while await api.total_tasks() != 52:
                assert time.monotonic() < deadline, await api.total_tasks()
                await asyncio.sleep(0.2)  # polling the agent with a deadline
            left = await api.task_ids()
            assert set(paused) <= left  # live tasks, older than anything deleted, are kept
            assert left - set(paused) == set(recent[10:])  # the newest 50 finished ones

    with running(data, **env) as agent:
        asyncio.run(check(agent))
    shrunk = _file_bytes(data / DB)
    assert shrunk < full / 5, (full, shrunk)
