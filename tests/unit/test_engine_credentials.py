"""Credentials reach the executor and nothing else: not the database, answers, events or logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger
from queue_helpers import EngineFactory, Work, within

from ai_admin.errors import ErrorCode, ExecutionError
from ai_admin.queue.models import DockerTask, TaskType
from ai_admin.queue.secrets import REDACTED

CANARY = "canary-s3cr3t-7f1d2c"


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


def _task() -> DockerTask:
    return DockerTask(
        task_type=TaskType.PUSH,
        params={
            "image_name": "registry.local/team/app",
            "tag": "1.4",
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
    assert CANARY not in json.dumps(events)
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
