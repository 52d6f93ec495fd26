"""The Docker executors through the real queue engine, against the real engine and registries.

Every task goes the way a client's does: submitted to a ``QueueEngine`` with the Docker
executors, awaited with ``wait_for`` and watched through a subscription. Successful paths check
the steps in their documented order, progress that only increases and reaches 100 with
completion, and what the result carries; failures check the code, the message, suggestions that
name what is involved, and whether the queue retried. Cancel and timeout check that Docker
really stopped: no build container left, no ``docker-*`` thread, no more bytes from the
registry.

A 30 MB image is built, pushed and pulled once per module (``flow``); the control tests use a
60 MB image pulled through a throttling proxy so that "while it downloads" lasts seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
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
from loguru import logger

from ai_admin.config import Settings
from ai_admin.docker.executors import docker_executors
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.events import Subscription
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore
from ai_admin.queue.store import TaskQuery

_WAIT_S = 120.0
_STOP_S = 10.0  # how long Docker may take to let go after a cancel (polled, not slept)
_BLOB_BYTES = 30_000_000
_BIG_MB = 60
_PROXY_RATE = 20_000_000  # bytes/s: the 60 MB pull takes about 3 s through the proxy

PULL_STEPS = ["validating", "preparing", "pulling", "downloading", "pulling", "completed"]
PUSH_STEPS = ["validating", "preparing", "uploading", "completed"]
BUILD_STEPS = ["validating", "preparing", "building", "completed"]
BUILD_PUSH_STEPS = ["validating", "preparing", "building", "uploading", "completed"]


# --- driving the agent ----------------------------------------------------------------------


def _settings(tmp: Path, **overrides: Any) -> Settings:
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
async def _agent(tmp: Path, **overrides: Any) -> AsyncIterator[QueueEngine]:
    settings = _settings(tmp, **overrides)
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
            status = event["status"]
            if status not in ("pending", "running") and (not steps or steps[-1] != status):
                steps.append(status)
        return steps

    @property
    def lines(self) -> list[str]:
        return [e["line"] for e in self.events if e["event"] == "log"]


async def _events_of(sub: Subscription, task_id: str) -> list[dict[str, Any]]:
    """Everything the subscription got for ``task_id`` until now (it is closed)."""
    sub.close()
    return [event async for event in sub if event["task_id"] == task_id]


async def _submit(
    engine: QueueEngine, task_type: TaskType, params: dict[str, Any], **fields: Any
) -> str:
    return (await engine.submit(DockerTask(task_type=task_type, params=params, **fields))).task_id


async def _run(
    engine: QueueEngine, task_type: TaskType, params: dict[str, Any], **fields: Any
) -> Run:
    sub = engine.subscribe()
    task_id = await _submit(engine, task_type, params, **fields)
    task = await engine.wait_for(task_id, timeout_s=_WAIT_S)
    return Run(task, await _events_of(sub, task_id))


async def _wait_event(
    sub: Subscription,
    task_id: str,
    predicate: Any,
    seen: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The task's first event that satisfies ``predicate``; ``seen`` collects those read."""
    async with asyncio.timeout(_WAIT_S):
        while True:
            event = await sub.next()
            assert event is not None, "the subscription ended"
            if event["task_id"] == task_id:
                if seen is not None:
                    seen.append(event)
                assert not TaskStatus(event["status"]).is_finished, event
                if predicate(event):
                    return event


async def _retried(engine: QueueEngine) -> int:
    return int((await engine.get_queue_stats())["counters"]["retried"])


def _assert_completed(run: Run, steps: list[str], *, moved: bool = True) -> dict[str, Any]:
    """Completed through ``steps``; progress only went up, and reached 100 with completion
    (after values in between when bytes ``moved``)."""
    task = run.task
    assert task.status is TaskStatus.COMPLETED, (task.error_code, task.error, task.logs[-10:])
    assert run.steps == steps
    values = [e["progress"] for e in run.events]
    assert values == sorted(values), f"progress went down: {values}"
    assert values[-1] == 100.0
    assert all(e["status"] == "completed" for e in run.events if e["progress"] >= 100.0)
    if moved:
        assert any(0 < v < 100 for v in values), "no progress was reported before completion"
    assert task.result is not None
    return task.result


def _assert_failed(
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
    assert run.events[-1]["status"] == status.value
    assert run.events[-1]["error_code"] == code


def _docker_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("docker-")]


async def _until(check: Any, what: str, timeout_s: float = _STOP_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"still {what} after {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


async def _no_docker_threads() -> None:
    await _until(lambda: not _docker_threads(), f"running: {_docker_threads()}")


@pytest.fixture(autouse=True)
async def _no_docker_call_left() -> AsyncIterator[None]:
    """Every test leaves no Docker call running in a thread of its own."""
    yield
    await _no_docker_threads()


def _build_containers(client: docker.DockerClient, marker: str) -> list[str]:
    """Containers (running or not) a build created for a step whose command holds ``marker``.

    Sparse: a container removed while listed (the engine cleaning up) is no error."""
    return [
        f"{c.attrs['Id'][:12]} ({c.attrs.get('State')})"
        for c in client.containers.list(all=True, sparse=True)
        if marker in (c.attrs.get("Command") or "")
    ]


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _registry_tags(registry: str, repository: str) -> list[str]:
    with requests.Session() as http:
        http.trust_env = False
        answer = http.get(f"http://{registry}/v2/{repository}/tags/list", timeout=10)
        return list(answer.json().get("tags") or [])


def _remove_image(client: docker.DockerClient, ref: str) -> None:
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


# --- module fixtures: one image of each size ------------------------------------------------


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


@pytest.fixture(scope="module")
def flow(
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Flow]:
    repository = f"{open_registry}/it/blob"
    tag = _uid()
    ref = f"{repository}:{tag}"
    dockerfile = (
        f"FROM {busybox_image}\n"
        f"RUN head -c {_BLOB_BYTES} /dev/urandom > /blob && echo {_uid()} > /nonce\n"
        'CMD ["sh"]\n'
    )

    async def go() -> Flow:
        async with _agent(tmp_path_factory.mktemp("flow")) as engine:
            build = await _run(
                engine, TaskType.BUILD, {"dockerfile": dockerfile, "tags": [ref], "no_cache": True}
            )
            assert build.task.status is TaskStatus.COMPLETED, build.task.error
            push = await _run(engine, TaskType.PUSH, {"image_name": repository, "tag": tag})
            assert push.task.status is TaskStatus.COMPLETED, push.task.error
            await asyncio.to_thread(docker_client.images.remove, ref)
            pull = await _run(engine, TaskType.PULL, {"image_name": repository, "tag": tag})
            return Flow(repository, tag, build, push, pull)

    try:
        yield asyncio.run(go())
    finally:
        _remove_image(docker_client, ref)


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


@pytest.fixture(scope="module")
def big_image(
    docker_client: docker.DockerClient, open_registry: str, busybox_image: str
) -> Iterator[BigImage]:
    tag = _uid()
    direct = f"{open_registry}/it/big"
    dockerenv.build_random_data_image(docker_client, f"{direct}:{tag}", _BIG_MB, base=busybox_image)
    try:
        pushed = dockerenv.push_image(docker_client, direct, tag)
    finally:
        _remove_image(docker_client, f"{direct}:{tag}")
    proxy = RegistryProxy(open_registry, rate=_PROXY_RATE)
    image = BigImage(f"{proxy.address}/it/big", tag, pushed.digest, proxy)
    try:
        yield image
    finally:
        _remove_image(docker_client, image.ref)
        proxy.close()


# --- build, push and pull: the successful paths ---------------------------------------------


def test_build_reports_steps_progress_and_the_image(
    flow: Flow, docker_client: docker.DockerClient
) -> None:
    result = _assert_completed(flow.build, BUILD_STEPS)
    assert result["tags"] == [flow.ref]
    image = docker_client.images.get(flow.ref)
    assert result["image_id"] == image.id
    assert image.attrs["Size"] >= _BLOB_BYTES
    lines = flow.build.task.logs
    assert any(line.startswith("Step 2/3 : RUN head -c") for line in lines), lines
    assert any(line.startswith("Successfully built") for line in lines), lines
    assert any(e["current_step"].startswith("Step 2/3") for e in flow.build.events)


def test_push_reports_bytes_and_the_digest(flow: Flow, open_registry: str) -> None:
    result = _assert_completed(flow.push, PUSH_STEPS)
    assert result["digest"].startswith("sha256:")
    assert result["digests"] == {flow.tag: result["digest"]}
    assert result["bytes_uploaded"] >= _BLOB_BYTES
    assert any("MB of" in e["current_step"] for e in flow.push.events if e["event"] == "progress")
    assert flow.tag in _registry_tags(open_registry, "it/blob")


def test_pull_reports_download_then_extraction_and_the_same_digest(
    flow: Flow, docker_client: docker.DockerClient
) -> None:
    result = _assert_completed(flow.pull, PULL_STEPS)
    assert result["digest"] == flow.push.task.result["digest"]  # type: ignore[index]
    assert result["image_id"] == flow.build.task.result["image_id"]  # type: ignore[index]
    assert f"{flow.repository}@{result['digest']}" in result["repo_digests"]
    assert result["bytes_downloaded"] >= _BLOB_BYTES
    assert docker_client.images.get(flow.ref).id == result["image_id"]
    downloading = [e for e in flow.pull.events if e["status"] == "downloading"]
    assert any(0 < e["progress"] < 80 for e in downloading)


async def test_push_of_all_tags(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
) -> None:
    repository = f"{open_registry}/it/all-{_uid()}"
    for tag in ("one", "two"):
        docker_client.images.get(busybox_image).tag(repository, tag)
        image_cleanup.add(f"{repository}:{tag}")
    async with _agent(tmp_path) as engine:
        run = await _run(engine, TaskType.PUSH, {"image_name": repository, "all_tags": True})
    # The registry may already hold busybox's layers (pushed by another test): then it
    # mounts them instead, and no byte moves.
    result = _assert_completed(run, PUSH_STEPS, moved=False)
    assert result["tag"] is None
    assert set(result["digests"]) == {"one", "two"}
    assert result["digest"] in result["digests"].values()
    assert set(_registry_tags(open_registry, repository.split("/", 1)[1])) == {"one", "two"}


async def test_build_with_push_uploads_every_tag(
    tmp_path: Path,
    open_registry: str,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
) -> None:
    tag = _uid()
    tags = [f"{open_registry}/it/built:{tag}", f"{open_registry}/it/built:{tag}-b"]
    for ref in tags:
        image_cleanup.add(ref)
    dockerfile = f"FROM {busybox_image}\nRUN head -c 2000000 /dev/urandom > /data\n"
    async with _agent(tmp_path) as engine:
        run = await _run(
            engine,
            TaskType.BUILD,
            {"dockerfile": dockerfile, "tags": tags, "push": True, "no_cache": True},
        )
    result = _assert_completed(run, BUILD_PUSH_STEPS)
    assert result["tags"] == tags
    assert set(result["digests"]) == set(tags)
    assert len(set(result["digests"].values())) == 1  # one image, one manifest
    assert all(d.startswith("sha256:") for d in result["digests"].values())
    assert {tag, f"{tag}-b"} <= set(_registry_tags(open_registry, "it/built"))
    uploading = [e["progress"] for e in run.events if e["status"] == "uploading"]
    assert uploading
    assert min(uploading) >= 60.0


async def test_build_from_a_context_directory(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
) -> None:
    context = tmp_path / "project"
    (context / "docker").mkdir(parents=True)
    nonce = _uid()
    (context / "data.txt").write_text(f"payload {nonce}\n")
    (context / "ignored.log").write_text("left out\n")
    (context / ".dockerignore").write_text("*.log\n")
    (context / "docker" / "app.Dockerfile").write_text(
        f"FROM {busybox_image} AS base\n"
        "ARG GREETING\n"
        "COPY data.txt /data.txt\n"
        "COPY . /context/\n"
        'RUN echo "greeting=$GREETING" && cat /data.txt && ls -a /context\n'
        "FROM base AS extra\n"
        "RUN echo never-built\n"
    )
    ref = image_cleanup.add(f"ai-admin-it/context:{nonce}")
    async with _agent(tmp_path) as engine:
        run = await _run(
            engine,
            TaskType.BUILD,
            {
                "context_path": str(context),
                "dockerfile_name": "docker/app.Dockerfile",
                "tags": [ref],
                "build_args": {"GREETING": "hello"},
                "labels": {"org.example.test": nonce},
                "target": "base",
                "network_mode": "none",
            },
        )
    result = _assert_completed(run, BUILD_STEPS)
    assert "greeting=hello" in run.lines
    assert f"payload {nonce}" in run.lines
    assert not any("never-built" in line for line in run.lines)
    assert {"data.txt", "docker", ".dockerignore"} <= set(run.lines)
    assert "ignored.log" not in run.lines
    image = docker_client.images.get(ref)
    assert image.id == result["image_id"]
    assert image.labels["org.example.test"] == nonce
    output = docker_client.containers.run(ref, ["cat", "/data.txt"], remove=True)
    assert output.decode() == f"payload {nonce}\n"


async def test_inline_dockerfile_replaces_the_context_one(
    tmp_path: Path, busybox_image: str, image_cleanup: dockerenv.ImageCleanup
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nUNKNOWN instruction\n")
    (context / "file.txt").write_text("from the context\n")
    ref = image_cleanup.add(f"ai-admin-it/inline:{_uid()}")
    dockerfile = f"FROM {busybox_image}\nCOPY file.txt /f\nRUN cat /f\n"
    async with _agent(tmp_path) as engine:
        run = await _run(
            engine,
            TaskType.BUILD,
            {"context_path": str(context), "dockerfile": dockerfile, "tags": [ref]},
        )
    _assert_completed(run, BUILD_STEPS)
    assert "from the context" in run.lines


# --- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize("task_type", [TaskType.PUSH, TaskType.PULL])
@pytest.mark.parametrize("credentials", ["wrong", "missing"])
async def test_refused_credentials_fail_without_retry(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    auth_registry: dockerenv.AuthRegistry,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
    task_type: TaskType,
    credentials: str,
) -> None:
    repository = f"{auth_registry.address}/it/private"
    tag = _uid()
    if task_type is TaskType.PUSH:
        docker_client.images.get(busybox_image).tag(repository, tag)
        image_cleanup.add(f"{repository}:{tag}")
    params: dict[str, Any] = {"image_name": repository, "tag": tag}
    if credentials == "wrong":
        params["auth"] = {"username": auth_registry.username, "password": "not-the-password"}
    async with _agent(tmp_path) as engine:
        run = await _run(engine, task_type, params)
        assert await _retried(engine) == 0
    _assert_failed(
        run,
        "DOCKER_AUTHENTICATION_FAILED",
        transient=False,
        retries=0,
        mentions=(f"{repository}:{tag}",),
        suggests=auth_registry.address,
    )
    assert run.task.error_details is not None
    assert run.task.error_details["registry"] == auth_registry.address


async def test_closed_registry_port_is_a_network_error_retried_to_the_limit(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
) -> None:
    registry = f"127.0.0.1:{_closed_port()}"
    docker_client.images.get(busybox_image).tag(f"{registry}/x", "1")
    image_cleanup.add(f"{registry}/x:1")
    async with _agent(tmp_path) as engine:
        run = await _run(engine, TaskType.PUSH, {"image_name": f"{registry}/x:1"}, max_retries=2)
        assert await _retried(engine) == 2
    _assert_failed(
        run,
        "DOCKER_NETWORK_ERROR",
        transient=True,
        retries=2,
        mentions=(f"{registry}/x:1",),
        suggests=registry,
    )
    assert "connection refused" in run.task.error_details["docker_message"]  # type: ignore[index]
    attempts = [e for e in run.events if e["status"] == "uploading" and e["event"] == "status"]
    assert len(attempts) == 3


async def test_pull_of_an_unknown_image(tmp_path: Path, open_registry: str) -> None:
    image = f"{open_registry}/it/does-not-exist-{_uid()}"
    async with _agent(tmp_path) as engine:
        run = await _run(engine, TaskType.PULL, {"image_name": image, "tag": "1.0"})
        assert await _retried(engine) == 0
    _assert_failed(
        run,
        "DOCKER_IMAGE_NOT_FOUND",
        transient=False,
        retries=0,
        mentions=(f"{image}:1.0",),
        suggests=f"{image}:1.0",
    )


async def test_push_of_a_missing_local_tag(tmp_path: Path, open_registry: str) -> None:
    image = f"{open_registry}/it/never-built:{_uid()}"
    async with _agent(tmp_path) as engine:
        run = await _run(engine, TaskType.PUSH, {"image_name": image})
    _assert_failed(
        run, "DOCKER_IMAGE_NOT_FOUND", transient=False, retries=0, mentions=(image,), suggests=image
    )
    assert run.steps == ["validating", "preparing", "failed"]


async def test_failing_run_step_names_the_step_and_quotes_its_output(
    tmp_path: Path, busybox_image: str
) -> None:
    dockerfile = (
        f"FROM {busybox_image}\n"
        "RUN echo fine\n"
        "RUN echo first-clue && echo second-clue >&2 && exit 3\n"
        "RUN echo never\n"
    )
    async with _agent(tmp_path) as engine:
        run = await _run(engine, TaskType.BUILD, {"dockerfile": dockerfile})
    _assert_failed(
        run,
        "DOCKER_BUILD_FAILED",
        transient=False,
        retries=0,
        mentions=("step 3/4", "exit code 3", "echo first-clue"),
        suggests="echo first-clue",
    )
    details = run.task.error_details
    assert details is not None
    assert details["step"] == 3
    assert details["total_steps"] == 4
    assert details["exit_code"] == 3
    assert details["instruction"].startswith("RUN echo first-clue")
    assert "first-clue" in details["last_output"]
    assert "second-clue" in details["last_output"]
    assert "fine" not in details["last_output"]  # the step before is not quoted
    assert "first-clue" in run.task.logs


async def test_unknown_instruction(tmp_path: Path, busybox_image: str) -> None:
    dockerfile = f"FROM {busybox_image}\nRUN true\nFROBNICATE the image\n"
    async with _agent(tmp_path) as engine:
        run = await _run(engine, TaskType.BUILD, {"dockerfile": dockerfile})
    _assert_failed(
        run,
        "DOCKER_BUILD_FAILED",
        transient=False,
        retries=0,
        mentions=("FROBNICATE",),
        suggests="FROBNICATE",
    )


async def test_missing_copy_source_names_the_file(tmp_path: Path, busybox_image: str) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "present.txt").write_text("here\n")
    (context / "Dockerfile").write_text(
        f"FROM {busybox_image}\nCOPY present.txt /present.txt\nCOPY missing-file.txt /app/\n"
    )
    async with _agent(tmp_path) as engine:
        run = await _run(engine, TaskType.BUILD, {"context_path": str(context)})
    _assert_failed(
        run,
        "DOCKER_BUILD_FAILED",
        transient=False,
        retries=0,
        mentions=("missing-file.txt", "step 3/3"),
        suggests="missing-file.txt",
    )
    assert run.task.error_info is not None
    assert str(context) in run.task.error_info.suggestions[0]


async def test_context_outside_the_allowed_roots(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM scratch\n")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "inside").mkdir()
    async with _agent(tmp_path, allowed_roots=[root]) as engine:
        runs = [
            await _run(engine, TaskType.BUILD, {"context_path": path})
            for path in (str(outside), str(root / "escape"), f"{root}/inside/../../outside")
        ]
    for run, path in zip(runs, (str(outside), str(root / "escape"), "outside"), strict=True):
        _assert_failed(
            run,
            "VALIDATION_PATH_NOT_ALLOWED",
            transient=False,
            retries=0,
            mentions=(path, str(root)),
            suggests=str(root),
        )
        assert run.steps == ["validating", "failed"]


async def test_timeout_stops_the_build_step(
    tmp_path: Path, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    marker = f"slow-{_uid()}"
    dockerfile = f"FROM {busybox_image}\nRUN sleep 30 && echo {marker}\n"
    async with _agent(tmp_path) as engine:
        started = time.monotonic()
        run = await _run(engine, TaskType.BUILD, {"dockerfile": dockerfile}, timeout_s=2)
        elapsed = time.monotonic() - started
        assert await _retried(engine) == 0
    _assert_failed(
        run,
        "SYSTEM_TIMEOUT",
        transient=False,
        retries=0,
        mentions=("timeout of 2 s",),
        status=TaskStatus.TIMEOUT,
    )
    assert elapsed < 2 + _STOP_S
    await _until(
        lambda: not _build_containers(docker_client, marker),
        f"left: {_build_containers(docker_client, marker)}",
    )


async def test_unreachable_daemon_is_transient(tmp_path: Path) -> None:
    socket_path = f"/tmp/ai-admin-no-daemon-{_uid()}.sock"
    async with _agent(tmp_path, docker_host=f"unix://{socket_path}") as engine:
        run = await _run(engine, TaskType.PULL, {"image_name": "busybox"}, max_retries=2)
        assert await _retried(engine) == 2
    _assert_failed(
        run,
        "DOCKER_DAEMON_UNAVAILABLE",
        transient=True,
        retries=2,
        mentions=("busybox:latest",),
        suggests=socket_path,
    )


# --- cancel, pause, concurrency -------------------------------------------------------------


async def test_cancel_a_running_pull_stops_the_download(
    tmp_path: Path, docker_client: docker.DockerClient, big_image: BigImage
) -> None:
    _remove_image(docker_client, big_image.ref)
    async with _agent(tmp_path) as engine:
        sub = engine.subscribe()
        task_id = await _submit(
            engine, TaskType.PULL, {"image_name": big_image.repository, "tag": big_image.tag}
        )
        await _wait_event(sub, task_id, lambda e: e["status"] == "downloading")
        started = time.monotonic()
        task = await engine.cancel_task(task_id)
        assert time.monotonic() - started < 5.0
        assert task.status is TaskStatus.CANCELLED
        assert (await engine.require_task(task_id)).status is TaskStatus.CANCELLED
        sub.close()
    await _no_docker_threads()
    # The engine let go of the registry: no more bytes flow, and no image appears.
    await _until(lambda: big_image.proxy.connections == 0, "connected to the registry")
    sent = big_image.proxy.sent
    await asyncio.sleep(1.0)
    assert big_image.proxy.sent == sent
    with pytest.raises(ImageNotFound):
        docker_client.images.get(big_image.ref)


async def test_cancel_a_running_build_removes_its_container(
    tmp_path: Path, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    marker = f"cancel-{_uid()}"
    dockerfile = f"FROM {busybox_image}\nRUN sleep 30 && echo {marker}\n"
    async with _agent(tmp_path) as engine:
        sub = engine.subscribe()
        task_id = await _submit(engine, TaskType.BUILD, {"dockerfile": dockerfile})
        await _wait_event(sub, task_id, lambda e: "Running in" in e.get("line", ""))
        assert _build_containers(docker_client, marker), "the step's container is not running"
        started = time.monotonic()
        task = await engine.cancel_task(task_id)
        assert time.monotonic() - started < 5.0
        assert task.status is TaskStatus.CANCELLED
        sub.close()
    await _no_docker_threads()
    await _until(
        lambda: not _build_containers(docker_client, marker),
        f"left: {_build_containers(docker_client, marker)}",
    )


async def test_pause_a_running_pull_and_resume_it(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    big_image: BigImage,
    image_cleanup: dockerenv.ImageCleanup,
) -> None:
    _remove_image(docker_client, big_image.ref)
    image_cleanup.add(big_image.ref)
    async with _agent(tmp_path) as engine:
        sub = engine.subscribe()
        task_id = await _submit(
            engine, TaskType.PULL, {"image_name": big_image.repository, "tag": big_image.tag}
        )
        events: list[dict[str, Any]] = []
        await _wait_event(sub, task_id, lambda e: e["status"] == "downloading", events)
        paused = await engine.pause_task(task_id)
        assert paused.status is TaskStatus.PAUSED
        await _no_docker_threads()
        resumed = await engine.resume_task(task_id)
        assert resumed.status is TaskStatus.PENDING
        task = await engine.wait_for(task_id, timeout_s=_WAIT_S)
        events += await _events_of(sub, task_id)
    assert task.status is TaskStatus.COMPLETED, task.error
    assert task.result is not None
    assert task.result["digest"] == big_image.digest
    statuses = [e["status"] for e in events if e["event"] == "status"]
    paused_at = statuses.index("paused")
    assert "downloading" in statuses[:paused_at]
    assert statuses[paused_at:] == ["paused", "pending", "running", *PULL_STEPS]
    assert events[-1]["progress"] == 100.0
    assert docker_client.images.get(big_image.ref).id == task.result["image_id"]


async def test_pulls_complete_while_one_registry_stalls(
    tmp_path: Path, flow: Flow, docker_client: docker.DockerClient
) -> None:
    stalled = RegistryProxy(flow.repository.split("/", 1)[0], stall=True)
    digest = flow.push.task.result["digest"]  # type: ignore[index]
    try:
        async with _agent(tmp_path, max_concurrent=4) as engine:
            sub = engine.subscribe()
            stuck = await _submit(
                engine, TaskType.PULL, {"image_name": f"{stalled.address}/it/blob:1"}
            )
            await _wait_event(sub, stuck, lambda e: e["status"] == "pulling")
            others = [
                await _submit(engine, TaskType.PULL, {"image_name": flow.ref}),
                await _submit(engine, TaskType.PULL, {"image_name": f"{flow.repository}@{digest}"}),
                await _submit(
                    engine, TaskType.PULL, {"image_name": flow.repository, "tag": flow.tag}
                ),
            ]
            for task_id in others:
                done = await engine.wait_for(task_id, timeout_s=_WAIT_S)
                assert done.status is TaskStatus.COMPLETED, done.error
                assert done.result is not None
                assert done.result["digest"] == digest
            assert not (await engine.require_task(stuck)).status.is_finished
            assert stalled.connections >= 1
            started = time.monotonic()
            cancelled = await engine.cancel_task(stuck)
            assert time.monotonic() - started < 5.0
            assert cancelled.status is TaskStatus.CANCELLED
            sub.close()
        await _no_docker_threads()
    finally:
        stalled.close()


# --- credentials stay secret ----------------------------------------------------------------


async def test_a_password_given_to_a_task_is_never_stored_logged_or_shown(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    open_registry: str,
    auth_registry: dockerenv.AuthRegistry,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = f"canary-Pw-{uuid.uuid4()}"
    auth = {"username": "canary-user", "password": password}
    tag = _uid()
    refused = f"{auth_registry.address}/it/canary"
    accepted = f"{open_registry}/it/canary"
    for repository in (refused, accepted):
        docker_client.images.get(busybox_image).tag(repository, tag)
        image_cleanup.add(f"{repository}:{tag}")
    # What docker-py sends to the engine: the password inside base64 JSON.
    headers = [
        docker.auth.encode_header({"serveraddress": r.split("/", 1)[0], **auth}).decode()
        for r in (refused, accepted)
    ]
    secrets = [password, *headers]

    logged: list[str] = []
    sink = logger.add(
        lambda message: logged.append(str(message)),
        level="TRACE",
        format="{level} {name} {message} {extra}",
        backtrace=True,
        diagnose=True,
    )
    caplog.set_level(logging.DEBUG)
    try:
        async with _agent(tmp_path, task_log_lines=1000) as engine:
            runs = [
                await _run(
                    engine, TaskType.PUSH, {"image_name": refused, "tag": tag, "auth": auth}
                ),
                await _run(
                    engine, TaskType.PUSH, {"image_name": accepted, "tag": tag, "auth": auth}
                ),
                await _run(
                    engine, TaskType.PULL, {"image_name": refused, "tag": tag, "auth": auth}
                ),
            ]
            summaries = [await engine.get_task_summary(r.task.id) for r in runs]
            stored_while_open = _files_bytes(tmp_path)
            listed, _ = await engine.list_tasks(TaskQuery(limit=100))
        logger.trace("sink check")
    finally:
        logger.remove(sink)
    assert any("sink check" in line for line in logged)
    assert "docker.api.image" in caplog.text  # docker-py's own debug lines were captured
    assert {"q.db", "q.db-wal"} <= set(stored_while_open)
    assert [r.task.status for r in runs] == [
        TaskStatus.FAILED,
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
    ]
    assert runs[0].task.error_code == "DOCKER_AUTHENTICATION_FAILED"
    assert runs[0].task.params["auth"] == {"username": "canary-user", "password": "***"}

    shown = json.dumps(
        [
            [r.task.public_dict() for r in runs],
            [t.public_dict() for t in listed],
            summaries,
            [r.events for r in runs],
            [r.task.error_details for r in runs],
        ],
        default=str,
    )
    texts = {
        "what clients see": shown,
        "loguru": "\n".join(logged),
        "standard logging": caplog.text,
    }
    for secret in secrets:
        for where, text in texts.items():
            assert secret not in text, f"the password reached {where}"
        for name, data in {**stored_while_open, **_files_bytes(tmp_path)}.items():
            assert secret.encode() not in data, f"the password reached {name}"


def _files_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (the SQLite database, its -wal and -shm), by name."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
