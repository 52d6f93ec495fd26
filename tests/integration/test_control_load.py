"""Many clients mixing submits and control actions against a real agent, with a kill -9 and a
restart in the middle, lose no task and leave the counters equal to what is stored.

``LOAD_S`` seconds of load (half before the kill, half after): ``CLIENTS`` HTTP clients submit
pulls (most to a closed port, so they fail at once and are retried automatically, the rest real
pulls of a small image from the open test registry) and fire pause, resume, cancel, retry and
forced retry at the tasks, often two or three at once at one task; an operator client pauses
and resumes the whole queue; a sampler reads ``queue_status`` all along. Then everything that
is held is resumed, and the queue must drain: every task a client was told about is stored and
finished, the statistics equal a count of the stored tasks, no answer was a 5xx, and no sample
ever showed more running than ``max_concurrent``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest
from agent_process import OPERATOR_TOKEN, AgentProcess, launch
from dockerenv import AuthRegistry, ImageCleanup, push_image
from http_client import Answer, Api, session

from ai_admin.errors import ErrorCode

pytestmark = pytest.mark.docker

LOAD_S = 20.0  # of load in all, half before the kill -9 and half after the restart
CLIENTS = 40
MAX_CONCURRENT = 4
DRAIN_S = 60.0
UNREACHABLE = "127.0.0.1:1/ai-admin-load/unreachable"  # refused at once: a quick failure
REAL_TAGS = 4  # tags of the small image in the open registry; equal pulls of one are merged
FINISHED = {"completed", "failed", "cancelled", "timeout", "merged"}
ACTIONS = ("pause", "resume", "cancel", "retry", "retry!")
AGENT_ENV = {
    "AI_ADMIN_MAX_CONCURRENT": str(MAX_CONCURRENT),
    "AI_ADMIN_RETRY_BASE_S": "0.05",
    "AI_ADMIN_RETRY_CAP_S": "0.2",
    "AI_ADMIN_PROGRESS_WRITE_INTERVAL_S": "0.1",
    "AI_ADMIN_SHUTDOWN_GRACE_S": "5",
}


@pytest.fixture
def real_image(
    docker_client: docker.DockerClient,
    busybox_image: str,
    open_registry: str,
    image_cleanup: ImageCleanup,
) -> str:
    """A small image in the open registry under ``REAL_TAGS`` tags; the repository's name."""
    repository = f"{open_registry}/ai-admin-load/busybox-{uuid.uuid4().hex[:8]}"
    image = docker_client.images.get(busybox_image)
    for i in range(REAL_TAGS):
        image.tag(repository, f"t{i}")
        image_cleanup.add(f"{repository}:t{i}")
        push_image(docker_client, repository, f"t{i}")
    return repository


@dataclass
class Load:
    """What the clients share: where the agent is, what it told them, what went wrong."""

    http: aiohttp.ClientSession
    api: Api
    real_repository: str
    rng: random.Random = field(default_factory=lambda: random.Random(1234))
    ids: list[str] = field(default_factory=list)  # every task a submit was answered 200 for
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    running_seen: list[int] = field(default_factory=list)
    down: bool = False
    up: asyncio.Event = field(default_factory=asyncio.Event)
    stop: bool = False
    paused_acked: bool | None = None  # the last whole-queue pause state the agent confirmed
    pause_in_flight: bool = False

    def note(self, what: str, answer: Answer, allowed: set[int]) -> None:
        self.statuses[answer.status] += 1
        if answer.status not in allowed:
            self.unexpected.append(f"{what}: {answer.describe()}")

    async def call(self, message: dict[str, Any]) -> Answer | None:
        """One command; None if the agent was down (killed on purpose) when it was sent."""
        try:
            return await self.api.cmd(message)
        except (TimeoutError, aiohttp.ClientError) as exc:
            if not self.down:
                self.unexpected.append(f"{message['action']}: no answer while up: {exc!r}")
            await self.up.wait()
            return None


def _submit_message(load: Load) -> dict[str, Any]:
    rng = load.rng
    if rng.random() < 0.35:
        params: dict[str, Any] = {
            "image_name": load.real_repository,
            "tag": f"t{rng.randrange(REAL_TAGS)}",
            "max_retries": 0,
        }
    else:
        params = {
            "image_name": UNREACHABLE,
            "tag": uuid.uuid4().hex[:12],
            "max_retries": rng.choice((0, 1, 2)),
        }
    return {"action": "docker_pull", "params": params}


def _action_message(action: str, task_id: str) -> dict[str, Any]:
    params: dict[str, Any] = {"action": action.rstrip("!"), "task_id": task_id}
    if action.endswith("!"):
        params["force"] = True
    return {"action": "queue_manage", "params": params}


async def _submit(load: Load) -> None:
    answer = await load.call(_submit_message(load))
    if answer is not None:
        load.note("submit", answer, {200})
        if answer.status == 200:
            load.ids.append(answer.data["task_id"])


async def _act(load: Load, action: str, task_id: str) -> None:
    answer = await load.call(_action_message(action, task_id))
    if answer is not None:
        load.note(f"{action} {task_id}", answer, {200, 409})


async def _client(load: Load) -> None:
    rng = load.rng
    while not load.stop:
        if not load.ids or rng.random() < 0.4:
            await _submit(load)
        else:
            task_id = rng.choice(load.ids[-60:])  # recent tasks: mostly still live
            burst = rng.choice((1, 2, 2, 3))
            actions = [rng.choice(ACTIONS) for _ in range(burst)]
            await asyncio.gather(*(_act(load, a, task_id) for a in actions))
        await asyncio.sleep(rng.uniform(0.1, 0.4))  # pacing: each client is a person or a script


async def _operator(load: Load) -> None:
    """Pauses and resumes the whole queue now and then, so tasks wait and actions meet them."""
    paused = False
    while not load.stop:
        await asyncio.sleep(load.rng.uniform(0.3, 0.8))  # pacing
        paused = not paused
        load.pause_in_flight = True
        answer = await load.call({"action": "queue_pause" if paused else "queue_resume"})
        load.pause_in_flight = False
        if answer is not None:
            load.note("queue pause", answer, {200})
            load.paused_acked = paused


async def _sampler(load: Load) -> None:
    while not load.stop:
        answer = await load.call({"action": "queue_status", "params": {"detailed": True}})
        if answer is not None and answer.status == 200:
            running = answer.data["summary"]["running"]
            load.running_seen.append(max(running, len(answer.data["tasks"]["running"])))
        await asyncio.sleep(0.05)  # sampling rate


async def _kill_and_restart(load: Load, agent: AgentProcess) -> AgentProcess:
    load.up.clear()
    load.down = True
    agent.proc.kill()  # SIGKILL: no shutdown, no flush
    agent.proc.wait()
    was_in_flight, acked = load.pause_in_flight, load.paused_acked
    restarted = await asyncio.to_thread(launch, agent.data_dir, env=AGENT_ENV)
    load.api = Api(load.http, restarted.url, OPERATOR_TOKEN)
    if not was_in_flight and acked is not None:  # what it confirmed survived the kill
        status = await load.api.ok("queue_status")
        assert status["queue"]["paused"] is acked
    load.down = False
    load.up.set()
    return restarted


async def _all_tasks(api: Api) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    while True:
        page = await api.ok("queue_list_tasks", limit=1000, offset=len(tasks))
        tasks += page["tasks"]
        if not page["tasks"] or len(tasks) >= page["total"]:
            return tasks


async def _drain(api: Api) -> list[dict[str, Any]]:
    """Resume what is held until every stored task has finished; the stored tasks."""
    await api.ok("queue_resume")
    deadline = time.monotonic() + DRAIN_S
    while True:
        tasks = await _all_tasks(api)
        for task in tasks:
            if task["status"] == "paused":
                await api.ok("queue_manage", action="resume", task_id=task["id"])
        if all(t["status"] in FINISHED for t in tasks):
            return tasks
        left = Counter(t["status"] for t in tasks if t["status"] not in FINISHED)
        assert time.monotonic() < deadline, f"tasks never finished: {left}"
        await asyncio.sleep(0.2)  # polling the agent with a deadline


async def test_control_actions_under_load_with_a_kill_lose_nothing(
    tmp_path: Path, real_image: str, image_cleanup: ImageCleanup
) -> None:
    agent = await asyncio.to_thread(launch, tmp_path / "data", env=AGENT_ENV)
    try:
        async with session() as http:
            load = Load(http, Api(http, agent.url, OPERATOR_TOKEN), real_image)
            load.up.set()
            workers = [asyncio.create_task(_client(load)) for _ in range(CLIENTS)]
            workers += [asyncio.create_task(_operator(load)), asyncio.create_task(_sampler(load))]
            await asyncio.sleep(LOAD_S / 2)  # the load runs
            agent = await _kill_and_restart(load, agent)
            await asyncio.sleep(LOAD_S / 2)
            load.stop = True
            await asyncio.gather(*workers)

            stored = await _drain(load.api)
            stats = await load.api.ok("queue_status")
    finally:
        stopped = agent.stop()
    assert load.unexpected == [], load.unexpected[:20]
    assert not [s for s in load.statuses if s >= 500], load.statuses
    assert load.statuses[200] > 0, load.statuses
    assert load.statuses[409] > 0, load.statuses  # races were lost, and said so
    by_id = {t["id"]: t for t in stored}
    assert [i for i in load.ids if i not in by_id] == [], "a task a client was told of is lost"
    status_counts = Counter(t["status"] for t in stored)
    assert stats["distributions"]["status"] == dict(status_counts)
    assert stats["summary"]["total_tasks"] == len(stored)
    assert stats["summary"]["running"] == 0
    assert stats["summary"]["queue_size"] == 0
    assert stats["counters"]["merged"] == status_counts["merged"]
    assert stats["counters"]["enqueued"] == len(stored) - status_counts["merged"]
    assert load.running_seen, "the sampler saw nothing"
    assert max(load.running_seen) <= MAX_CONCURRENT
    assert stopped == 0, agent.stderr()[-3000:]
    assert "Traceback" not in agent.stderr(), agent.stderr()[-5000:]


async def test_the_queue_pause_survives_kill_9(tmp_path: Path) -> None:
    # Regression: a paused queue came back unpaused after a restart and ran everything at once.
    agent = await asyncio.to_thread(launch, tmp_path / "data", env=AGENT_ENV)
    try:
        async with session() as http:
            api = Api(http, agent.url, OPERATOR_TOKEN)
            assert await api.ok("queue_pause") == {"queue": "default", "paused": True}
            ids = []
            for _ in range(3):
                message = _submit_message(Load(http, api, "unused", random.Random(0)))
                submitted = await api.ok(message["action"], **message["params"])
                ids.append(submitted["task_id"])
            agent.proc.kill()
            agent.proc.wait()

            agent = await asyncio.to_thread(launch, tmp_path / "data", env=AGENT_ENV)
            api = Api(http, agent.url, OPERATOR_TOKEN)
            status = await api.ok("queue_status")
            assert status["queue"]["paused"] is True
            assert status["distributions"]["status"] == {"pending": 3}
            for task_id in ids:
                task = await api.task(task_id)
                assert task["status"]["value"] == "pending"
                assert task["timing"]["started_at"] is None  # nothing started

            assert await api.ok("queue_resume") == {"queue": "default", "paused": False}
            for task_id in ids:
                assert (await api.finished(task_id))["status"]["value"] == "failed"
    finally:
        assert agent.stop() == 0, agent.stderr()[-3000:]


async def test_a_task_whose_credentials_died_with_the_agent_never_runs_without_them(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    busybox_image: str,
    auth_registry: AuthRegistry,
    image_cleanup: ImageCleanup,
) -> None:
    # Regression: a re-queued task that carried per-task credentials ran without them and
    # failed with an authentication error that did not say why.
    repository = f"{auth_registry.address}/ai-admin-lost/busybox-{uuid.uuid4().hex[:8]}"
    docker_client.images.get(busybox_image).tag(repository, "1")
    image_cleanup.add(f"{repository}:1")
    push_image(docker_client, repository, "1", auth_registry.auth_config)
    docker_client.images.remove(f"{repository}:1")
    pull = {"image_name": repository, "tag": "1", "auth": auth_registry.auth_config}

    agent = await asyncio.to_thread(launch, tmp_path / "data", env=AGENT_ENV)
    try:
        async with session() as http:
            api = Api(http, agent.url, OPERATOR_TOKEN)
            await api.ok("queue_pause")
            task_id = (await api.ok("docker_pull", **pull))["task_id"]
            agent.proc.kill()
            agent.proc.wait()

            agent = await asyncio.to_thread(launch, tmp_path / "data", env=AGENT_ENV)
            api = Api(http, agent.url, OPERATOR_TOKEN)
            await api.ok("queue_resume")
            task = await api.finished(task_id)
            assert task["status"]["value"] == "failed"
            assert task["timing"]["started_at"] is None  # it never ran without them
            assert task["error"]["code"] == ErrorCode.QUEUE_CREDENTIALS_LOST.value
            assert any("credentials" in s for s in task["error"]["suggestions"])
            await api.refused(
                api.cmd(
                    {"action": "queue_manage", "params": {"task_id": task_id, "action": "retry"}}
                ),
                ErrorCode.QUEUE_CREDENTIALS_LOST,
                409,
            )
            # What the suggestion says works: the same pull, submitted again with them.
            again = (await api.ok("docker_pull", **pull))["task_id"]
            assert (await api.finished(again))["status"]["value"] == "completed"
    finally:
        assert agent.stop() == 0, agent.stderr()[-3000:]
