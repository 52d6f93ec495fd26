"""Build options that reach the host: refused unless configured, at submit and when run.

``network_mode`` is checked against ``allowed_network_modes`` (exact values) by the
``docker_build`` command, so a client gets its 400 at once, and again by the build executor,
for tasks that come in through the Python API (``TaskQueue``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from queue_helpers import Work, executors_for, make_settings, within

from ai_admin.agent import Agent
from ai_admin.commands import Dispatcher, Reply
from ai_admin.docker.build_options import check_network_mode
from ai_admin.docker.params import BuildParams
from ai_admin.errors import ErrorCode, InvalidParams
from ai_admin.python_api import TaskQueue
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore

DEFAULTS = ["default", "bridge", "none"]


def _refused(mode: str, allowed: list[str]) -> InvalidParams:
    with pytest.raises(InvalidParams) as caught:
        check_network_mode(mode, allowed)
    return caught.value


@pytest.mark.parametrize("mode", [None, *DEFAULTS])
def test_the_default_modes_and_none_given_pass(mode: str | None) -> None:
    check_network_mode(mode, DEFAULTS)


@pytest.mark.parametrize(
    "mode",
    ["host", "container:db", "container:*", "my-network", "HOST", " host", "bridge ", "", "none:"],
)
def test_anything_else_is_refused_naming_the_values_and_the_setting(mode: str) -> None:
    error = _refused(mode, DEFAULTS)
    assert error.code is ErrorCode.VALIDATION_OPTION_NOT_ALLOWED
    assert not error.transient
    assert f"network_mode {mode!r} is not allowed" in error.message
    assert "default, bridge, none" in error.message
    assert error.details == {
        "option": "network_mode",
        "value": mode,
        "allowed": DEFAULTS,
        "setting": "allowed_network_modes",
    }
    assert "default, bridge, none" in error.suggestions[0]
    assert "`allowed_network_modes`" in error.suggestions[1]


def test_only_exact_values_the_operator_listed() -> None:
    check_network_mode("host", [*DEFAULTS, "host"])
    check_network_mode("container:builder-net", ["container:builder-net"])
    assert _refused("container:other", ["container:builder-net"])
    assert _refused("bridge", ["host"])


def test_an_empty_list_allows_only_the_engine_default() -> None:
    check_network_mode(None, [])
    error = _refused("none", [])
    assert "none is allowed" in error.message
    assert "Leave network_mode out" in error.suggestions[0]


def test_network_mode_is_the_only_build_option_that_reaches_the_host() -> None:
    """A tripwire: a new build option must be judged (host, devices, extra hosts, isolation,
    shared memory...) and, if it reaches outside the build, checked as network_mode is."""
    assert set(BuildParams.model_fields) == {
        "auth",
        "context_path",
        "dockerfile",
        "dockerfile_name",
        "tags",
        "build_args",
        "labels",
        "target",
        "no_cache",
        "pull",
        "network_mode",
        "platform",
        "push",
    }


# --- through the docker_build command and the executor ----------------------------------------


class Agents:
    """An agent per configuration, each with a real queue and a fake executor."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.work = Work(block=False)
        self.agents: list[Agent] = []

    def agent(self, **settings: Any) -> Agent:
        data = self.tmp_path / f"agent-{len(self.agents)}"
        config = make_settings(data, allowed_roots=[self.tmp_path], **settings)
        queue = TaskQueue(SqliteStore(data / "q.db"), executors_for(self.work), config)
        self.agents.append(Agent(config, queue=queue))
        return self.agents[-1]


@pytest.fixture
async def agents(tmp_path: Path) -> AsyncIterator[Agents]:
    made = Agents(tmp_path)
    yield made
    made.work.release()
    for agent in made.agents:
        await within(agent.stop())


async def _build(agent: Agent, **params: Any) -> Reply:
    message = {"action": "docker_build", "params": {"dockerfile": "FROM scratch\n", **params}}
    return await within(Dispatcher(agent).dispatch(message, can_write=True))


async def _total(agent: Agent) -> int:
    stats = await agent.queue.get_queue_stats()
    return int(stats["summary"]["total_tasks"])


async def test_the_command_refuses_host_at_submit_and_queues_nothing(agents: Agents) -> None:
    agent = agents.agent()
    reply = await _build(agent, network_mode="host")
    assert reply.status == 400
    error = reply.envelope["error"]
    assert error["code"] == ErrorCode.VALIDATION_OPTION_NOT_ALLOWED.value
    assert error["details"]["allowed"] == DEFAULTS
    assert await _total(agent) == 0
    assert agents.work.starts == []


async def test_the_command_accepts_what_the_configuration_allows(agents: Agents) -> None:
    default = agents.agent()
    for mode in DEFAULTS:
        assert (await _build(default, network_mode=mode)).success
    allowing = agents.agent(allowed_network_modes=[*DEFAULTS, "host"])
    reply = await _build(allowing, network_mode="host")
    assert reply.success, reply.envelope


@pytest.mark.timeout(30)  # a hang is the bug: fail fast rather than at the suite's limit
async def test_the_command_refuses_a_fifo_dockerignore_at_once(
    agents: Agents, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    os.mkfifo(context / ".dockerignore")
    agent = agents.agent()
    reply = await _build(agent, context_path=str(context), dockerfile=None)
    assert reply.status == 400
    assert reply.envelope["error"]["code"] == ErrorCode.VALIDATION_INVALID_PARAMS.value
    assert ".dockerignore is not a regular file" in reply.envelope["error"]["message"]
    assert await _total(agent) == 0


async def test_the_executor_refuses_a_task_from_the_python_api_before_docker(
    tmp_path: Path,
) -> None:
    # No engine at this address: the refusal must come before any Docker call.
    settings = make_settings(tmp_path, docker_host="unix:///nonexistent/docker.sock")
    queue = TaskQueue(SqliteStore(tmp_path / "q.db"), settings=settings)
    try:
        task = DockerTask(
            task_type=TaskType.BUILD,
            params={"dockerfile": "FROM scratch\n", "network_mode": "container:db"},
            max_retries=0,
        )
        submitted = await within(queue.submit(task))
        done = await within(queue.wait_for(submitted.task_id))
    finally:
        await within(queue.close())
    assert done.status is TaskStatus.FAILED
    assert done.error_code == ErrorCode.VALIDATION_OPTION_NOT_ALLOWED
    assert "'container:db' is not allowed" in (done.error or "")
