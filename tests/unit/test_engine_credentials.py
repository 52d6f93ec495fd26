"""Credentials reach the executor and nothing else: not the database, answers, events or logs;
and a task whose credentials a restart lost never runs without them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger
from queue_helpers import EngineFactory, Work, refused, within

from ai_admin.errors import ErrorCode, ExecutionError
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.secrets import REDACTED, split_secrets
from ai_admin.queue.sqlite_store import SqliteStore

CANARY = "canary-s3cr3t-7f1d2c"
E_LOST = ErrorCode.QUEUE_CREDENTIALS_LOST


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every loguru line while the test runs, at every level."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="TRACE")
    yield lines
    logger.remove(sink)


def _db_bytes(tmp_path: Path) -> bytes:
    files = sorted(tmp_path.glob("q.db*"))  # the database, its WAL and shared memory
    assert tmp_path / "q.db" in files
    return b"".join(f.read_bytes() for f in files)


def _task(tag: str = "1.4") -> DockerTask:
    return DockerTask(
        task_type=TaskType.PUSH,
        params={
            "image_name": "registry.local/team/app",
            "tag": tag,
            "auth": {"username": "ci-bot", "password": CANARY, "identity_token": CANARY + "-id"},
        },
    )


async def test_a_password_reaches_the_executor_but_is_stored_and_shown_nowhere(
    make_engine: EngineFactory, tmp_path: Path, log_lines: list[str]
) -> None:
    work = Work(block=False)
    engine = await make_engine(work)
    task = _task()
    sub = engine.subscribe(task.id)
    task_id = await engine.add_task(task)
    done = await within(engine.wait_for(task_id))

    assert work.params[task_id]["auth"] == {
        "username": "ci-bot",
        "password": CANARY,
        "identity_token": CANARY + "-id",
    }
    stored = await engine.require_task(task_id)
    assert stored.params["auth"] == {
        "username": "ci-bot",
        "password": REDACTED,
        "identity_token": REDACTED,
    }
    assert CANARY not in json.dumps(stored.public_dict())
    assert CANARY not in json.dumps(await engine.get_task_summary(task_id))
    assert CANARY not in json.dumps(done.public_dict())
    assert CANARY not in repr(stored)
    assert CANARY.encode() not in _db_bytes(tmp_path)

    events = []
    while (event := await within(sub.next())) is not None:
        events.append(event)
        if event["status"] == "completed":
            break
    assert CANARY not in json.dumps([dict(e) for e in events])
    assert not any(CANARY in line for line in log_lines)

    await engine.close()
    assert CANARY.encode() not in _db_bytes(tmp_path)  # nor after the WAL is checkpointed


async def test_credentials_survive_automatic_and_manual_retries(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    work = Work(block=False)
    engine = await make_engine(work)
    task = _task()
    work.fail(
        task.id,
        ExecutionError("registry down", code=ErrorCode.DOCKER_REGISTRY_ERROR),
        ExecutionError("denied", code=ErrorCode.DOCKER_AUTHENTICATION_FAILED),
    )
    task_id = await engine.add_task(task)
    failed = await within(engine.wait_for(task_id))
    assert failed.error_code == ErrorCode.DOCKER_AUTHENTICATION_FAILED.value
    assert work.attempts[task_id] == [1, 2]

    await engine.retry_task(task_id)
    done = await within(engine.wait_for(task_id))
    assert done.retry_count == 2
    assert work.params[task_id]["auth"]["password"] == CANARY  # on the manual retry too
    assert CANARY.encode() not in _db_bytes(tmp_path)


async def test_a_task_whose_credentials_were_lost_in_a_restart_never_runs_without_them(
    make_engine: EngineFactory, tmp_path: Path, log_lines: list[str]
) -> None:
    # Regression: a re-queued task that carried credentials ran without them after a restart
    # and failed with an authentication error that did not say why.
    work = Work(block=False)
    engine = await make_engine(work)
    failed = _task()
    work.fail(failed.id, ExecutionError("denied", code=ErrorCode.DOCKER_AUTHENTICATION_FAILED))
    failed_id = await engine.add_task(failed)
    await within(engine.wait_for(failed_id))
    await engine.pause_queue()
    waiting = await engine.add_task(_task(tag="waiting"))
    held = await engine.add_task(_task(tag="held"))
    await engine.pause_task(held)
    plain = await engine.add_task(DockerTask(task_type=TaskType.PULL, params={"image_name": "x"}))
    await engine.close()
    # A task stored as running, as a kill -9 leaves it.
    store = SqliteStore(tmp_path / "q.db")
    await store.open()
    running = _task(tag="running")
    running.params = split_secrets(running.params)[0]
    running.status = TaskStatus.RUNNING
    await store.save([running])
    await store.close()

    rerun = Work(block=False)
    reopened = await make_engine(rerun, store=SqliteStore(tmp_path / "q.db"))
    await reopened.resume_queue()
    await within(reopened.join())

    assert rerun.starts == [plain]
    for task_id in (waiting, held, running.id):
        lost = await reopened.require_task(task_id)
        assert lost.status is TaskStatus.FAILED, task_id
        assert lost.error_code == ErrorCode.QUEUE_CREDENTIALS_LOST.value
        assert lost.error_info is not None
        assert not lost.error_info.transient
        assert any("again with its credentials" in s for s in lost.error_info.suggestions)
        assert not lost.can_retry or lost.retry_count == 0
    assert any(ErrorCode.QUEUE_CREDENTIALS_LOST.value in line for line in log_lines)
    stats = await reopened.get_queue_stats()
    assert stats["distributions"]["error"] == {
        "DOCKER_AUTHENTICATION_FAILED": 1,
        "QUEUE_CREDENTIALS_LOST": 3,
    }
    # Neither a retry nor a forced one runs such a task: the credentials are not coming back.
    for task_id in (failed_id, waiting, running.id):
        for force in (False, True):
            await refused(reopened.retry_task(task_id, force=force), E_LOST)
    await within(reopened.join())
    assert rerun.starts == [plain]
    assert CANARY.encode() not in _db_bytes(tmp_path)
