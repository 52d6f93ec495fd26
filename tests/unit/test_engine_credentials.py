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
        if event.status == "completed":
            break
    assert CANARY not in json.dumps([e.to_dict() for e in events])
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


async def test_retention_deleting_a_failed_task_drops_its_credentials_from_memory(
    make_engine: EngineFactory,
) -> None:
    """The credentials of a failed task are kept in memory for a manual retry; once the task
    is deleted (retention, as queue_clear) nothing can retry it, and they must not linger."""
    work = Work(block=False)
    engine = await make_engine(work)
    old, new = _task("old"), _task("new")
    for task in (old, new):
        work.fail(task.id, ExecutionError("denied", code=ErrorCode.DOCKER_AUTHENTICATION_FAILED))
        await engine.add_task(task)
        await within(engine.wait_for(task.id))

    assert await engine.delete_finished(keep_newest=1) == 1
    assert await engine.get_task(old.id) is None
    assert old.id not in engine._secrets  # the memory the test is about: nothing else shows it
    await engine.retry_task(new.id)  # the one kept still retries with its credentials
    await within(engine.wait_for(new.id))
    assert work.params[new.id]["auth"]["password"] == CANARY


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


def _build_with(args: dict[str, str]) -> DockerTask:
    return DockerTask(
        task_type=TaskType.BUILD, params={"dockerfile": "FROM scratch\n", "build_args": args}
    )


async def test_a_failure_quoting_a_secret_build_arg_is_stored_masked(
    make_engine: EngineFactory, tmp_path: Path, log_lines: list[str]
) -> None:
    # Regression: details were masked through their JSON text, so a secret equal to a number
    # in them ("1234") broke the JSON and left the task running for ever, and a non-ASCII
    # secret (escaped in JSON) was never found.
    work = Work(block=False)
    engine = await make_engine(work, max_retries=0, max_concurrent=1)
    numeric, accented = _build_with({"API_KEY": "1234"}), _build_with({"DB_PASSWORD": "hünter22"})
    work.fail(
        numeric.id,
        ExecutionError("exit 1234", code=ErrorCode.DOCKER_BUILD_FAILED, details={"exit": 1234}),
    )
    work.fail(
        accented.id,
        ExecutionError(
            "failed",
            code=ErrorCode.DOCKER_BUILD_FAILED,
            details={"last_output": ["using hünter22"], "step": 2},
        ),
    )
    for task in (numeric, accented):
        await engine.add_task(task)
    failed = [await within(engine.wait_for(t.id)) for t in (numeric, accented)]

    assert [t.status for t in failed] == [TaskStatus.FAILED, TaskStatus.FAILED]
    assert failed[0].error == "exit ***"
    assert failed[0].error_details == {"exit": 1234}
    assert failed[1].error_details == {"last_output": ["using ***"], "step": 2}
    await engine.close()
    assert "hünter22".encode() not in _db_bytes(tmp_path)


async def test_an_unexpected_failure_logs_no_secret_build_arg(
    make_engine: EngineFactory, log_lines: list[str]
) -> None:
    secret = "canary-npm-token-55e1"
    work = Work(block=False)
    engine = await make_engine(work, max_retries=0)
    task = _build_with({"NPM_TOKEN": secret})
    work.fail(task.id, RuntimeError(f"the build said NPM_TOKEN={secret}"))
    failed = await within(engine.wait_for(await engine.add_task(task)))

    assert failed.error_code == ErrorCode.UNKNOWN_ERROR.value
    assert secret not in (failed.error or "")
    assert any("failed unexpectedly" in line for line in log_lines)
    assert not any(secret in line for line in log_lines)
