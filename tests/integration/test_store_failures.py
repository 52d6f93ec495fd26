"""The agent when its own machine fails it, through a real ``ai-admin serve``: a full disk under
its data directory (a small tmpfs filled to the last byte), a database that cannot be opened,
and stored tasks that no longer load.

The pulls submitted here name a registry nobody listens on, and the queue is paused first, so
no Docker work runs while the disk is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_process import OPERATOR_TOKEN, launch, serving
from canaries import assert_no_canary
from http_client import Api, client
from small_disk import fill, small_disk
from spoiled_db import SPOILERS

from ai_admin.errors import ErrorCode
from ai_admin.queue.models import DockerTask, TaskType
from ai_admin.queue.sqlite_store import SqliteStore

PASSWORD = "canary-disk-full-password-8c1d3a"
STORED_VALUE = "canary-stored-status-2b7e90"
DB = "ai-admin.db"


def _pull(n: int, **params: Any) -> dict[str, Any]:
    image = f"127.0.0.1:1/store-failures/app{n}"
    return {"action": "docker_pull", "params": {"image_name": image, "tag": "1", **params}}


async def _submit(api: Api, n: int) -> str:
    answer = await api.cmd(_pull(n))
    return str(answer.data["task_id"])


async def _stored_and_counted(api: Api) -> tuple[set[str], dict[str, Any]]:
    status = await api.ok("queue_status")
    return await api.task_ids(), status


def _database_files(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob(f"{DB}*")))


# -- a full disk ----------------------------------------------------------------------------------


async def test_a_full_disk_answers_507_stores_nothing_and_recovers(tmp_path: Path) -> None:
    # Regression: a full disk answered INTERNAL_ERROR and the counters counted the lost submits.
    answers: list[str] = []
    logs: list[str] = []
    with small_disk(tmp_path / "data") as data_dir:
        with serving(data_dir) as agent:
            async with client(agent.url, OPERATOR_TOKEN) as api:
                await api.ok("queue_pause")
                stored = {await _submit(api, n) for n in range(3)}
                filler = fill(data_dir)

                refused = await asyncio.gather(
                    *(
                        api.cmd(_pull(10 + n, auth={"username": "u", "password": PASSWORD}))
                        for n in range(5)
                    )
                )
                for answer in refused:
                    assert (answer.status, answer.code) == (507, "SYSTEM_DISK_SPACE"), (
                        answer.describe()
                    )
                    error = answer.body["error"]
                    assert str(data_dir) in error["message"]
                    assert any("queue_clear" in s for s in error["suggestions"])
                    assert any("other files" in s for s in error["suggestions"])
                ids, status = await _stored_and_counted(api)
                assert ids == stored
                assert status["summary"]["total_tasks"] == len(stored)
                assert status["counters"]["enqueued"] == len(stored)

                filler.unlink()  # space returns: the running agent takes work again
                stored.add(await _submit(api, 20))
                ids, status = await _stored_and_counted(api)
                assert ids == stored
                assert status["counters"]["enqueued"] == len(stored)
                answers += [a.text for a in api.answers]
            database_while_running = _database_files(data_dir)
        logs.append(agent.output())

        with serving(data_dir) as agent:  # nothing was stored half-way
            async with client(agent.url, OPERATOR_TOKEN) as api:
                ids, status = await _stored_and_counted(api)
                assert ids == stored
                assert status["summary"]["total_tasks"] == len(stored)
                assert status["counters"]["enqueued"] == len(stored)
                images = {t["params"]["image_name"] for t in await _listed(api)}
                assert images == {_pull(n)["params"]["image_name"] for n in (0, 1, 2, 20)}
                answers += [a.text for a in api.answers]
        logs.append(agent.output())
        assert "disk is full" in logs[0]
        for where, text in [("an answer", "\n".join(answers)), ("the log", "\n".join(logs))]:
            assert_no_canary(text, [PASSWORD, OPERATOR_TOKEN], where)
        assert_no_canary(database_while_running + _database_files(data_dir), [PASSWORD], "the db")


async def _listed(api: Api) -> list[dict[str, Any]]:
    data = await api.ok("queue_list_tasks", limit=100)
    tasks: list[dict[str, Any]] = data["tasks"]
    return tasks


# -- a database that cannot be opened -----------------------------------------------------------


async def _a_database_with_tasks(db: Path) -> None:
    store = SqliteStore(db)
    await store.open()
    try:
        await store.save(
            [
                DockerTask(task_type=TaskType.PULL, params={"image_name": f"i{n}"})
                for n in range(200)
            ]
        )
    finally:
        await store.close()


@pytest.mark.parametrize("spoil", SPOILERS)
async def test_a_database_that_cannot_be_opened_stops_start_up_in_one_line(
    tmp_path: Path, spoil: Callable[[Path], None]
) -> None:
    # Regression: a corrupt database file stopped start-up with a 60-line traceback.
    data_dir = tmp_path / "data"
    db = data_dir / DB
    await _a_database_with_tasks(db)
    spoil(db)

    line = _start_up_refused(data_dir)
    assert line.startswith(f"ai-admin: cannot open the task database {db}: ")
    assert "move it aside and restart" in line
    assert "restore it from a backup" in line


async def test_a_database_the_agent_may_not_write_stops_start_up_in_one_line(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    db = data_dir / DB
    await _a_database_with_tasks(db)
    with _immutable(db):  # not even root may write it
        line = _start_up_refused(data_dir)
    assert line == (
        f"ai-admin: cannot open the task database {db}: permission denied; "
        "give the agent's user read and write access to it and to its directory"
    )


@contextlib.contextmanager
def _immutable(path: Path) -> Iterator[None]:
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _start_up_refused(data_dir: Path) -> str:
    """The one line a refused start-up printed (exit status 1, no traceback)."""
    agent = launch(data_dir, wait=False)
    assert agent.wait_exit() == 1, agent.output()
    assert "Traceback" not in agent.output()
    lines = agent.stderr().strip().splitlines()
    assert len(lines) == 1, agent.output()
    return lines[0]


# -- stored tasks that no longer load -------------------------------------------------------------


def _overwrite_doc(db: Path, task_id: str, change: Callable[[str], str]) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        (doc,) = conn.execute("SELECT doc FROM tasks WHERE id = ?", (task_id,)).fetchone()
        conn.execute("UPDATE tasks SET doc = ? WHERE id = ?", (change(doc), task_id))


def _with_status(value: str) -> Callable[[str], str]:
    return lambda doc: json.dumps({**json.loads(doc), "status": value})


async def test_the_agent_starts_with_the_tasks_that_load_and_sets_the_rest_aside(
    tmp_path: Path,
) -> None:
    # Regression: one malformed row of an unfinished task stopped the agent from starting.
    data_dir = tmp_path / "data"
    with serving(data_dir) as agent:
        async with client(agent.url, OPERATOR_TOKEN) as api:
            await api.ok("queue_pause")
            good, broken, unknown = [await _submit(api, n) for n in range(3)]
    _overwrite_doc(data_dir / DB, broken, lambda doc: doc[: len(doc) // 2])  # cut short
    _overwrite_doc(data_dir / DB, unknown, _with_status(STORED_VALUE))

    with serving(data_dir) as agent:
        async with client(agent.url, OPERATOR_TOKEN) as api:
            ids, status = await _stored_and_counted(api)
            assert ids == {good}
            assert status["summary"]["total_tasks"] == 1
            set_aside = status["set_aside"]
            assert set_aside["count"] == 2
            assert {a["task_id"] for a in set_aside["tasks"]} == {broken, unknown}
            assert (await api.task(good))["task_id"] == good
            for task_id in (broken, unknown):
                await api.refused(
                    api.cmd({"action": "queue_task_status", "params": {"task_id": task_id}}),
                    ErrorCode.QUEUE_TASK_NOT_FOUND,
                    404,
                )
            answers = "\n".join(a.text for a in api.answers)
    log = agent.output()
    for task_id in (broken, unknown):
        assert f"stored task {task_id} does not load and is set aside" in log
    assert_no_canary(log + answers, [STORED_VALUE], "the log or an answer")
