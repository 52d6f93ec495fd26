"""The harness of ``test_docker_executors``: the queue engine with the Docker executors, driven
as a client drives it, and what the tests check its runs with.

- ``docker_engine(tmp)``: a ``QueueEngine`` with the Docker executors and quick retries;
  ``run_task`` submits one task and awaits it, keeping every event it published (``Run``);
  ``assert_completed`` / ``assert_failed`` check a run's steps, progress, code and advice.
- ``docker_threads`` / ``no_docker_threads``: no Docker call may be left running in a thread.
- ``RegistryProxy``: a registry served slowly, or not at all, through a TCP proxy.
- ``flow_through_the_agent`` and ``big_image_behind_a_proxy``: the module's two images (30 MB
  built, pushed and pulled once; 60 MB pulled through a throttling proxy).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import dockerenv
import pytest
import requests
from docker.errors import ImageNotFound

from ai_admin.config import Settings
from ai_admin.docker.executors import docker_executors
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.events import Subscription
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore

WAIT_S = 120.0
STOP_S = 10.0  # how long Docker may take to let go after a cancel (polled, not slept)
BLOB_BYTES = 30_000_000
BIG_MB = 60
PROXY_RATE = 20_000_000  # bytes/s: the 60 MB pull takes about 3 s through the proxy

PULL_STEPS = ["validating", "preparing", "pulling", "downloading", "pulling", "completed"]
PUSH_STEPS = ["validating", "preparing", "uploading", "completed"]
BUILD_STEPS = ["validating", "preparing", "building", "completed"]
BUILD_PUSH_STEPS = ["validating", "preparing", "building", "uploading", "completed"]


# --- driving the engine ---------------------------------------------------------------------


def settings_for(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp,
        "allowed_roots": [tmp],
        "retry_base_s": 0.05,
        "retry_cap_s": 0.2,
        "max_retries": 2,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def docker_engine(tmp: Path, **overrides: Any) -> AsyncIterator[QueueEngine]:
    settings = settings_for(tmp, **overrides)
    engine = QueueEngine(SqliteStore(tmp / "q.db"), docker_executors(settings), settings)
    async with engine:
        yield engine


@dataclass
class Run:
    task: DockerTask
    events: list[dict[str, Any]]

    @property
    def steps(self) -> list[str]:
        """The statuses the task went through after it started, without repeats."""
        steps: list[str] = []
        for event in self.events:
            status = event.status
            if status not in ("pending", "running") and (not steps or steps[-1] != status):
                steps.append(status)
        return steps

    @property
    def lines(self) -> list[str]:
        return [e.line for e in self.events if e.event == "log"]


async def events_of(sub: Subscription, task_id: str) -> list[dict[str, Any]]:
    """Everything the subscription got for ``task_id`` until now (it is closed)."""
    sub.close()
    return [event async for event in sub if event.task_id == task_id]


async def submit(
    engine: QueueEngine, task_type: TaskType, params: dict[str, Any], **fields: Any
) -> str:
    return (await engine.submit(DockerTask(task_type=task_type, params=params, **fields))).task_id


async def run_task(
    engine: QueueEngine, task_type: TaskType, params: dict[str, Any], **fields: Any
) -> Run:
    sub = engine.subscribe()
    task_id = await submit(engine, task_type, params, **fields)
    task = await engine.wait_for(task_id, timeout_s=WAIT_S)
    return Run(task, await events_of(sub, task_id))


async def wait_event(
    sub: Subscription,
    task_id: str,
    predicate: Any,
    seen: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The task's first event that satisfies ``predicate``; ``seen`` collects those read."""
    async with asyncio.timeout(WAIT_S):
        while True:
            event = await sub.next()
            assert event is not None, "the subscription ended"
            if event.task_id == task_id:
                if seen is not None:
                    seen.append(event)
                assert not TaskStatus(event.status).is_finished, event
                if predicate(event):
                    return event


async def retried(engine: QueueEngine) -> int:
    return int((await engine.get_queue_stats())["counters"]["retried"])


def assert_completed(run: Run, steps: list[str], *, moved: bool = True) -> dict[str, Any]:
    """Completed through ``steps``; progress only went up, and reached 100 with completion
    (after values in between when bytes ``moved``)."""
    task = run.task
    assert task.status is TaskStatus.COMPLETED, (task.error_code, task.error, task.logs[-10:])
    assert run.steps == steps
    values = [e.progress for e in run.events]
    assert values == sorted(values), f"progress went down: {values}"
    assert values[-1] == 100.0
    assert all(e.status == "completed" for e in run.events if e.progress >= 100.0)
    if moved:
        assert any(0 < v < 100 for v in values), "no progress was reported before completion"
    assert task.result is not None
    return task.result


def assert_failed(
    run: Run,
    code: str,
    *,
    transient: bool,
    retries: int,
    mentions: tuple[str, ...] = (),
    suggests: str | None = None,
    status: TaskStatus = TaskStatus.FAILED,
) -> None:
    """The failure's code, message, advice, and whether the queue retried it."""
    task = run.task
    assert task.status is status, (task.status, task.error_code, task.error)
    assert task.error_code == code, task.error
    assert task.error_info is not None
    assert task.error_info.transient is transient
    assert task.retry_count == retries
    assert task.error
    for fragment in mentions:
        assert fragment in task.error, f"{fragment!r} not in {task.error!r}"
    assert task.error_info.suggestions
    if suggests is not None:
        assert any(suggests in s for s in task.error_info.suggestions), (
            f"no suggestion names {suggests!r}: {task.error_info.suggestions}"
        )
    assert run.events[-1].status == status.value
    assert run.events[-1].error_code == code


def docker_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("docker-")]


async def until(check: Any, what: str, timeout_s: float = STOP_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"still {what} after {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


async def no_docker_threads() -> None:
    await until(lambda: not docker_threads(), f"running: {docker_threads()}")


def build_containers(client: docker.DockerClient, marker: str) -> list[str]:
    """Containers (running or not) a build created for a step whose command holds ``marker``.

    Sparse: a container removed while listed (the engine cleaning up) is no error."""
    return [
        f"{c.attrs['Id'][:12]} ({c.attrs.get('State')})"
        for c in client.containers.list(all=True, sparse=True)
        if marker in (c.attrs.get("Command") or "")
    ]


def uid() -> str:
    return uuid.uuid4().hex[:10]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def registry_tags(registry: str, repository: str) -> list[str]:
    with requests.Session() as http:
        http.trust_env = False
        answer = http.get(f"http://{registry}/v2/{repository}/tags/list", timeout=10)
        return list(answer.json().get("tags") or [])


def remove_image(client: docker.DockerClient, ref: str) -> None:
    with contextlib.suppress(ImageNotFound):
        client.images.remove(ref, force=True)


# --- a registry that is slow or silent ------------------------------------------------------


class RegistryProxy:
    """A TCP proxy in front of a registry on a thread of its own: serves at ``rate`` bytes/s,
    or (``stall``) accepts connections and never answers."""

    def __init__(self, target: str, *, rate: float = 0.0, stall: bool = False) -> None:
        self._target_port = int(target.rsplit(":", 1)[1])
        self._rate = rate
        self._stall = stall
        self.sent = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="test-registry-proxy", daemon=True
        )
        self._thread.start()
        start = asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if self._stall:
                while await reader.read(65536):
                    pass
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
            self._writers.add(up_writer)
            await asyncio.gather(
                self._pipe(reader, up_writer, 0.0), self._pipe(up_reader, writer, self._rate)
            )
        except OSError:
            pass
        finally:
            writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float
    ) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
                if rate:
                    self.sent += len(data)
                    await asyncio.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            writer.close()

    @property
    def connections(self) -> int:
        """Connections still open (both ends of each proxied one)."""
        return sum(1 for w in list(self._writers) if not w.is_closing())

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            for writer in self._writers:
                writer.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


# --- one image of each size, for the module fixtures ----------------------------------------


@dataclass(frozen=True)
class Flow:
    """The 30 MB image built, pushed and pulled through the agent, once per module."""

    repository: str
    tag: str
    build: Run
    push: Run
    pull: Run

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@contextlib.contextmanager
def flow_through_the_agent(
    docker_client: docker.DockerClient, open_registry: str, busybox_image: str, data_dir: Path
) -> Iterator[Flow]:
    """Build, push, remove and pull the 30 MB image with the engine in ``data_dir``; the image
    is removed on exit."""
    repository = f"{open_registry}/it/blob"
    tag = uid()
    ref = f"{repository}:{tag}"
    dockerfile = (
        f"FROM {busybox_image}\n"
        f"RUN head -c {BLOB_BYTES} /dev/urandom > /blob && echo {uid()} > /nonce\n"
        'CMD ["sh"]\n'
    )

    async def go() -> Flow:
        async with docker_engine(data_dir) as engine:
            build = await run_task(
                engine, TaskType.BUILD, {"dockerfile": dockerfile, "tags": [ref], "no_cache": True}
            )
            assert build.task.status is TaskStatus.COMPLETED, build.task.error
            push = await run_task(engine, TaskType.PUSH, {"image_name": repository, "tag": tag})
            assert push.task.status is TaskStatus.COMPLETED, push.task.error
            await asyncio.to_thread(docker_client.images.remove, ref)
            pull = await run_task(engine, TaskType.PULL, {"image_name": repository, "tag": tag})
            return Flow(repository, tag, build, push, pull)

    try:
        yield asyncio.run(go())
    finally:
        remove_image(docker_client, ref)


@dataclass(frozen=True)
class BigImage:
    """A 60 MB image in the open registry, absent locally, and a slow proxy in front of it."""

    repository: str  # named through the proxy
    tag: str
    digest: str
    proxy: RegistryProxy

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@contextlib.contextmanager
def big_image_behind_a_proxy(
    docker_client: docker.DockerClient, open_registry: str, busybox_image: str
) -> Iterator[BigImage]:
    """The 60 MB image pushed and removed locally, and the proxy; both cleaned up on exit."""
    tag = uid()
    direct = f"{open_registry}/it/big"
    dockerenv.build_random_data_image(docker_client, f"{direct}:{tag}", BIG_MB, base=busybox_image)
    try:
        pushed = dockerenv.push_image(docker_client, direct, tag)
    finally:
        remove_image(docker_client, f"{direct}:{tag}")
    proxy = RegistryProxy(open_registry, rate=PROXY_RATE)
    image = BigImage(f"{proxy.address}/it/big", tag, pushed.digest, proxy)
    try:
        yield image
    finally:
        remove_image(docker_client, image.ref)
        proxy.close()
