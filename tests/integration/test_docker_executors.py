"""The Docker executors through the real queue engine, against the real engine and registries.

Every task goes the way a client's does: submitted to a ``QueueEngine`` with the Docker
executors, awaited with ``wait_for`` and watched through a subscription. Successful paths check
the steps in their documented order, progress that only increases and reaches 100 with
completion, and what the result carries; failures check the code, the message, suggestions that
name what is involved, and whether the queue retried. Cancel and timeout check that Docker
really stopped: no build container left, no ``docker-*`` thread, no more bytes from the
registry.

A 30 MB image is built, pushed and pulled once per module (``flow``); the control tests use a
60 MB image pulled through a throttling proxy so that "while it downloads" lasts seconds. The
harness (the engine, the run records and their checks, the proxy) is ``executor_harness``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import docker
import dockerenv
import pytest
from docker.errors import ImageNotFound
from executor_harness import (
    BIG_MB,
    BLOB_BYTES,
    BUILD_PUSH_STEPS,
    BUILD_STEPS,
    PROXY_RATE,
    PULL_STEPS,
    PUSH_STEPS,
    STOP_S,
    WAIT_S,
    BigImage,
    Flow,
    RegistryProxy,
    Run,
    assert_completed,
    assert_failed,
    big_image_behind_a_proxy,
    build_containers,
    closed_port,
    docker_engine,
    events_of,
    flow_through_the_agent,
    no_docker_threads,
    registry_tags,
    remove_image,
    retried,
    run_task,
    submit,
    uid,
    until,
    wait_event,
)
from loguru import logger

from ai_admin.queue.models import ProgressDetail, TaskStatus, TaskType
from ai_admin.queue.store import TaskQuery


@pytest.fixture(autouse=True)
async def _no_docker_call_left() -> AsyncIterator[None]:
    """Every test leaves no Docker call running in a thread of its own."""
    yield
    await no_docker_threads()


@pytest.fixture(scope="module")
def flow(
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Flow]:
    data_dir = tmp_path_factory.mktemp("flow")
    with flow_through_the_agent(docker_client, open_registry, busybox_image, data_dir) as made:
        yield made


@pytest.fixture(scope="module")
def big_image(
    docker_client: docker.DockerClient, open_registry: str, busybox_image: str
) -> Iterator[BigImage]:
    with big_image_behind_a_proxy(docker_client, open_registry, busybox_image) as image:
        yield image


# --- build, push and pull: the successful paths ---------------------------------------------


def test_build_reports_steps_progress_and_the_image(
    flow: Flow, docker_client: docker.DockerClient
) -> None:
    result = assert_completed(flow.build, BUILD_STEPS)
    assert result["tags"] == [flow.ref]
    image = docker_client.images.get(flow.ref)
    assert result["image_id"] == image.id
    assert image.attrs["Size"] >= BLOB_BYTES
    lines = flow.build.task.logs
    assert any(line.startswith("Step 2/3 : RUN head -c") for line in lines), lines
    assert any(line.startswith("Successfully built") for line in lines), lines
    assert any(e.current_step.startswith("Step 2/3") for e in flow.build.events)


def test_push_reports_bytes_and_the_digest(flow: Flow, open_registry: str) -> None:
    result = assert_completed(flow.push, PUSH_STEPS)
    assert result["digest"].startswith("sha256:")
    assert result["digests"] == {flow.tag: result["digest"]}
    assert result["bytes_uploaded"] >= BLOB_BYTES
    assert any("MB of" in e.current_step for e in flow.push.events if e.event == "progress")
    assert flow.tag in registry_tags(open_registry, "it/blob")


def test_pull_reports_download_then_extraction_and_the_same_digest(
    flow: Flow, docker_client: docker.DockerClient
) -> None:
    result = assert_completed(flow.pull, PULL_STEPS)
    assert result["digest"] == flow.push.task.result["digest"]  # type: ignore[index]
    assert result["image_id"] == flow.build.task.result["image_id"]  # type: ignore[index]
    assert f"{flow.repository}@{result['digest']}" in result["repo_digests"]
    assert result["bytes_downloaded"] >= BLOB_BYTES
    assert docker_client.images.get(flow.ref).id == result["image_id"]
    downloading = [e for e in flow.pull.events if e.status == "downloading"]
    assert any(0 < e.progress < 80 for e in downloading)


# --- the numbers behind the bar: bytes, rate, time left ----------------------------------------


def numbers(run: Run, phase: str) -> list[ProgressDetail]:
    """The run's progress numbers of one phase, in the order they were published."""
    found = [e.progress_detail for e in run.events if e.event == "progress"]
    return [d for d in found if d is not None and d.phase == phase]


def assert_moved_to_the_end(details: list[ProgressDetail], at_least: int) -> None:
    """Bytes only rose, ended at the total; a rate once bytes moved; the time left ended at 0."""
    assert details, "no numbers were reported"
    done = [d.bytes_done or 0 for d in details]
    assert done == sorted(done), "bytes went down"
    assert all(d.bytes_total is not None and (d.bytes_done or 0) <= d.bytes_total for d in details)
    last = details[-1]
    assert last.bytes_done == last.bytes_total
    assert (last.bytes_done or 0) >= at_least
    assert last.layers_done == last.layers_total
    assert any(d.rate_bps and d.rate_bps > 0 for d in details), "no rate while bytes moved"
    assert all(d.rate_bps is None for d in details if not d.bytes_done)  # none before a move
    assert last.eta_s == 0.0


def test_push_reports_bytes_rate_and_time_left(flow: Flow) -> None:
    uploading = numbers(flow.push, "uploading")
    assert_moved_to_the_end(uploading, BLOB_BYTES)
    assert flow.push.task.progress_detail == uploading[-1]  # kept with the task


def test_pull_reports_bytes_rate_and_time_left_of_download_then_extraction(flow: Flow) -> None:
    assert_moved_to_the_end(numbers(flow.pull, "downloading"), BLOB_BYTES)
    extracting = numbers(flow.pull, "extracting")
    assert extracting, "no numbers while extracting"
    assert extracting[-1].bytes_done == extracting[-1].bytes_total
    phases = [d.phase for e in flow.pull.events if (d := e.progress_detail) is not None]
    assert phases.index("extracting") > len(phases) - 1 - phases[::-1].index("downloading")


def test_build_reports_its_steps_as_numbers(flow: Flow) -> None:
    building = numbers(flow.build, "building")
    steps = [(d.step, d.steps_total) for d in building]
    assert list(dict.fromkeys(steps)) == [(1, 3), (2, 3), (3, 3)]  # ("Built" keeps the last)


async def test_a_slow_pull_reads_the_registrys_rate_and_a_falling_time_left(
    tmp_path: Path, docker_client: docker.DockerClient, big_image: BigImage
) -> None:
    """60 MB through a proxy that serves 20 MB/s: the rate reads about that, and the time left
    falls as the bytes come, to 0."""
    remove_image(docker_client, big_image.ref)
    try:
        async with docker_engine(tmp_path) as engine:
            run = await run_task(
                engine, TaskType.PULL, {"image_name": big_image.repository, "tag": big_image.tag}
            )
    finally:
        remove_image(docker_client, big_image.ref)
    assert run.task.status is TaskStatus.COMPLETED, run.task.error
    downloading = numbers(run, "downloading")
    assert_moved_to_the_end(downloading, BIG_MB * 1_000_000)
    rates = [d.rate_bps for d in downloading if d.rate_bps]
    settled = rates[len(rates) // 2 :]  # after the first second or so
    # The proxy sleeps after each 64 kB it forwards, so it serves a little under its rate.
    assert all(0.4 * PROXY_RATE < r < 1.5 * PROXY_RATE for r in settled), settled
    etas = [d.eta_s for d in downloading if d.eta_s is not None]
    assert etas[0] > 1.0
    # It falls as the bytes come; a report may read a little more than the one before it (the
    # rate settles in the first seconds, the proxy's pace wobbles), never much more.
    assert all(b < a + 0.5 for a, b in pairwise(etas)), etas
    quarter = len(etas) // 4
    assert max(etas[-quarter:]) < min(etas[:quarter]) - 1.0, etas
    print(
        f"\nslow pull: {len(downloading)} reports, rate {min(settled) / 1e6:.1f}-"
        f"{max(settled) / 1e6:.1f} MB/s (median {sorted(settled)[len(settled) // 2] / 1e6:.1f}),"
        f" eta {etas[0]:.1f} s -> {etas[-1]:.1f} s: {etas}"
    )


async def test_push_of_all_tags(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
) -> None:
    repository = f"{open_registry}/it/all-{uid()}"
    for tag in ("one", "two"):
        docker_client.images.get(busybox_image).tag(repository, tag)
        image_cleanup.add(f"{repository}:{tag}")
    async with docker_engine(tmp_path) as engine:
        run = await run_task(engine, TaskType.PUSH, {"image_name": repository, "all_tags": True})
    # The registry may already hold busybox's layers (pushed by another test): then it
    # mounts them instead, and no byte moves.
    result = assert_completed(run, PUSH_STEPS, moved=False)
    assert result["tag"] is None
    assert set(result["digests"]) == {"one", "two"}
    assert result["digest"] in result["digests"].values()
    assert set(registry_tags(open_registry, repository.split("/", 1)[1])) == {"one", "two"}


async def test_build_with_push_uploads_every_tag(
    tmp_path: Path,
    open_registry: str,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
) -> None:
    tag = uid()
    tags = [f"{open_registry}/it/built:{tag}", f"{open_registry}/it/built:{tag}-b"]
    for ref in tags:
        image_cleanup.add(ref)
    dockerfile = f"FROM {busybox_image}\nRUN head -c 2000000 /dev/urandom > /data\n"
    async with docker_engine(tmp_path) as engine:
        run = await run_task(
            engine,
            TaskType.BUILD,
            {"dockerfile": dockerfile, "tags": tags, "push": True, "no_cache": True},
        )
    result = assert_completed(run, BUILD_PUSH_STEPS)
    assert result["tags"] == tags
    assert set(result["digests"]) == set(tags)
    assert len(set(result["digests"].values())) == 1  # one image, one manifest
    assert all(d.startswith("sha256:") for d in result["digests"].values())
    assert {tag, f"{tag}-b"} <= set(registry_tags(open_registry, "it/built"))
    uploading = [e.progress for e in run.events if e.status == "uploading"]
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
    nonce = uid()
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
    async with docker_engine(tmp_path) as engine:
        run = await run_task(
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
    result = assert_completed(run, BUILD_STEPS)
    sent = numbers(run, "sending context")
    assert sent, "the context's bytes were not reported"
    assert sent[-1].bytes_done == sent[-1].bytes_total
    assert (sent[-1].bytes_total or 0) > len(f"payload {nonce}\n")  # a tar of the files
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
    ref = image_cleanup.add(f"ai-admin-it/inline:{uid()}")
    dockerfile = f"FROM {busybox_image}\nCOPY file.txt /f\nRUN cat /f\n"
    async with docker_engine(tmp_path) as engine:
        run = await run_task(
            engine,
            TaskType.BUILD,
            {"context_path": str(context), "dockerfile": dockerfile, "tags": [ref]},
        )
    assert_completed(run, BUILD_STEPS)
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
    tag = uid()
    if task_type is TaskType.PUSH:
        docker_client.images.get(busybox_image).tag(repository, tag)
        image_cleanup.add(f"{repository}:{tag}")
    params: dict[str, Any] = {"image_name": repository, "tag": tag}
    if credentials == "wrong":
        params["auth"] = {"username": auth_registry.username, "password": "not-the-password"}
    async with docker_engine(tmp_path) as engine:
        run = await run_task(engine, task_type, params)
        assert await retried(engine) == 0
    assert_failed(
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
    registry = f"127.0.0.1:{closed_port()}"
    docker_client.images.get(busybox_image).tag(f"{registry}/x", "1")
    image_cleanup.add(f"{registry}/x:1")
    async with docker_engine(tmp_path) as engine:
        run = await run_task(
            engine, TaskType.PUSH, {"image_name": f"{registry}/x:1"}, max_retries=2
        )
        assert await retried(engine) == 2
    assert_failed(
        run,
        "DOCKER_NETWORK_ERROR",
        transient=True,
        retries=2,
        mentions=(f"{registry}/x:1",),
        suggests=registry,
    )
    assert "connection refused" in run.task.error_details["docker_message"]  # type: ignore[index]
    attempts = [e for e in run.events if e.status == "uploading" and e.event == "status"]
    assert len(attempts) == 3


async def test_pull_of_an_unknown_image(tmp_path: Path, open_registry: str) -> None:
    image = f"{open_registry}/it/does-not-exist-{uid()}"
    async with docker_engine(tmp_path) as engine:
        run = await run_task(engine, TaskType.PULL, {"image_name": image, "tag": "1.0"})
        assert await retried(engine) == 0
    assert_failed(
        run,
        "DOCKER_IMAGE_NOT_FOUND",
        transient=False,
        retries=0,
        mentions=(f"{image}:1.0",),
        suggests=f"{image}:1.0",
    )


async def test_push_of_a_missing_local_tag(tmp_path: Path, open_registry: str) -> None:
    image = f"{open_registry}/it/never-built:{uid()}"
    async with docker_engine(tmp_path) as engine:
        run = await run_task(engine, TaskType.PUSH, {"image_name": image})
    assert_failed(
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
    async with docker_engine(tmp_path) as engine:
        run = await run_task(engine, TaskType.BUILD, {"dockerfile": dockerfile})
    assert_failed(
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
    async with docker_engine(tmp_path) as engine:
        run = await run_task(engine, TaskType.BUILD, {"dockerfile": dockerfile})
    assert_failed(
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
    async with docker_engine(tmp_path) as engine:
        run = await run_task(engine, TaskType.BUILD, {"context_path": str(context)})
    assert_failed(
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
    async with docker_engine(tmp_path, allowed_roots=[root]) as engine:
        runs = [
            await run_task(engine, TaskType.BUILD, {"context_path": path})
            for path in (str(outside), str(root / "escape"), f"{root}/inside/../../outside")
        ]
    for run, path in zip(runs, (str(outside), str(root / "escape"), "outside"), strict=True):
        assert_failed(
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
    marker = f"slow-{uid()}"
    dockerfile = f"FROM {busybox_image}\nRUN sleep 30 && echo {marker}\n"
    async with docker_engine(tmp_path) as engine:
        started = time.monotonic()
        run = await run_task(engine, TaskType.BUILD, {"dockerfile": dockerfile}, timeout_s=2)
        elapsed = time.monotonic() - started
        assert await retried(engine) == 0
    assert_failed(
        run,
        "SYSTEM_TIMEOUT",
        transient=False,
        retries=0,
        mentions=("timeout of 2 s",),
        status=TaskStatus.TIMEOUT,
    )
    assert elapsed < 2 + STOP_S
    await until(
        lambda: not build_containers(docker_client, marker),
        f"left: {build_containers(docker_client, marker)}",
    )


async def test_unreachable_daemon_is_transient(tmp_path: Path) -> None:
    socket_path = f"/tmp/ai-admin-no-daemon-{uid()}.sock"
    async with docker_engine(tmp_path, docker_host=f"unix://{socket_path}") as engine:
        run = await run_task(engine, TaskType.PULL, {"image_name": "busybox"}, max_retries=2)
        assert await retried(engine) == 2
    assert_failed(
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
    remove_image(docker_client, big_image.ref)
    async with docker_engine(tmp_path) as engine:
        sub = engine.subscribe()
        task_id = await submit(
            engine, TaskType.PULL, {"image_name": big_image.repository, "tag": big_image.tag}
        )
        await wait_event(sub, task_id, lambda e: e.status == "downloading")
        started = time.monotonic()
        task = await engine.cancel_task(task_id)
        assert time.monotonic() - started < 5.0
        assert task.status is TaskStatus.CANCELLED
        assert (await engine.require_task(task_id)).status is TaskStatus.CANCELLED
        sub.close()
    await no_docker_threads()
    # The engine let go of the registry: no more bytes flow, and no image appears.
    await until(lambda: big_image.proxy.connections == 0, "connected to the registry")
    sent = big_image.proxy.sent
    await asyncio.sleep(1.0)
    assert big_image.proxy.sent == sent
    with pytest.raises(ImageNotFound):
        docker_client.images.get(big_image.ref)


async def test_cancel_a_running_build_removes_its_container(
    tmp_path: Path, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    marker = f"cancel-{uid()}"
    dockerfile = f"FROM {busybox_image}\nRUN sleep 30 && echo {marker}\n"
    async with docker_engine(tmp_path) as engine:
        sub = engine.subscribe()
        task_id = await submit(engine, TaskType.BUILD, {"dockerfile": dockerfile})
        await wait_event(sub, task_id, lambda e: "Running in" in (e.line or ""))
        assert build_containers(docker_client, marker), "the step's container is not running"
        started = time.monotonic()
        task = await engine.cancel_task(task_id)
        assert time.monotonic() - started < 5.0
        assert task.status is TaskStatus.CANCELLED
        sub.close()
    await no_docker_threads()
    await until(
        lambda: not build_containers(docker_client, marker),
        f"left: {build_containers(docker_client, marker)}",
    )


async def test_pause_a_running_pull_and_resume_it(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    big_image: BigImage,
    image_cleanup: dockerenv.ImageCleanup,
) -> None:
    remove_image(docker_client, big_image.ref)
    image_cleanup.add(big_image.ref)
    async with docker_engine(tmp_path) as engine:
        sub = engine.subscribe()
        task_id = await submit(
            engine, TaskType.PULL, {"image_name": big_image.repository, "tag": big_image.tag}
        )
        events: list[dict[str, Any]] = []
        await wait_event(sub, task_id, lambda e: e.status == "downloading", events)
        paused = await engine.pause_task(task_id)
        assert paused.status is TaskStatus.PAUSED
        await no_docker_threads()
        resumed = await engine.resume_task(task_id)
        assert resumed.status is TaskStatus.PENDING
        task = await engine.wait_for(task_id, timeout_s=WAIT_S)
        events += await events_of(sub, task_id)
    assert task.status is TaskStatus.COMPLETED, task.error
    assert task.result is not None
    assert task.result["digest"] == big_image.digest
    statuses = [e.status for e in events if e.event == "status"]
    paused_at = statuses.index("paused")
    assert "downloading" in statuses[:paused_at]
    assert statuses[paused_at:] == ["paused", "pending", "running", *PULL_STEPS]
    assert events[-1].progress == 100.0
    assert docker_client.images.get(big_image.ref).id == task.result["image_id"]


async def test_pulls_complete_while_one_registry_stalls(
    tmp_path: Path, flow: Flow, docker_client: docker.DockerClient
) -> None:
    stalled = RegistryProxy(flow.repository.split("/", 1)[0], stall=True)
    digest = flow.push.task.result["digest"]  # type: ignore[index]
    try:
        async with docker_engine(tmp_path, max_concurrent=4) as engine:
            sub = engine.subscribe()
            stuck = await submit(
                engine, TaskType.PULL, {"image_name": f"{stalled.address}/it/blob:1"}
            )
            await wait_event(sub, stuck, lambda e: e.status == "pulling")
            others = [
                await submit(engine, TaskType.PULL, {"image_name": flow.ref}),
                await submit(engine, TaskType.PULL, {"image_name": f"{flow.repository}@{digest}"}),
                await submit(
                    engine, TaskType.PULL, {"image_name": flow.repository, "tag": flow.tag}
                ),
            ]
            for task_id in others:
                done = await engine.wait_for(task_id, timeout_s=WAIT_S)
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
        await no_docker_threads()
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
    tag = uid()
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
        async with docker_engine(tmp_path, task_log_lines=1000) as engine:
            runs = [
                await run_task(
                    engine, TaskType.PUSH, {"image_name": refused, "tag": tag, "auth": auth}
                ),
                await run_task(
                    engine, TaskType.PUSH, {"image_name": accepted, "tag": tag, "auth": auth}
                ),
                await run_task(
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
