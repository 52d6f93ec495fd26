"""Docker overhead: the same build, push and pull through the agent's queue and the docker CLI.

    .venv/bin/python bench/docker_overhead.py              # 5 rounds, a ~100 MB layer
    .venv/bin/python bench/docker_overhead.py --rounds 9 --big-mb 200

Needs a Docker engine, the ``docker`` CLI, ``/usr/bin/docker-registry`` and a static busybox
(``scripts/ensure-docker`` installs them). The benchmark starts its own registry (a plain
process on a free 127.0.0.1 port, storage in a temporary directory) and builds the tests'
busybox base image ``FROM scratch``; both go away at the end, with every image it made.

Two images: "small" (one tiny layer made by RUN) and "large" (a context directory holding a
file of fresh random bytes, copied into the image: a large build context and a ~100 MB layer).
Each round gives both contenders the same work, in alternating order: build from a fresh
context (new bytes, so nothing is cached), push under a tag of its own (the registry has never
seen the layer, so it is uploaded), remove the local image, pull it back. The agent's times run
from ``submit`` to ``wait_for`` returning, through a ``QueueEngine`` with the Docker executors;
the CLI's are the wall time of ``docker build|push|pull`` (legacy builder, as the SDK uses).
The table shows the median per operation and the agent/CLI ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, ImageNotFound

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import dockerenv

from ai_admin.config import Settings
from ai_admin.docker.executors import docker_executors
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore

_OPERATIONS = ("build", "push", "pull")
_CLI_ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the legacy builder, as docker-py uses


# --- the registry -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def registry(workdir: Path) -> Iterator[str]:
    """``docker-registry serve`` on a free 127.0.0.1 port; yields its address."""
    binary = dockerenv.find_tool("docker-registry", "docker-registry", ["/usr/bin/docker-registry"])
    port = _free_port()
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'registry-data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (workdir / "registry.log").open("wb")
    process = subprocess.Popen([str(binary), "serve", str(config)], stdout=log, stderr=log)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://{address}/v2/", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the registry did not start: {(workdir / 'registry.log').read_text()}"
                    ) from None
                time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# --- the work -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    name: str
    layer_mb: int  # 0: a few bytes

    def context(self, parent: Path, base: str) -> Path:
        """A fresh context: new bytes every time, so neither build nor push can reuse a layer."""
        directory = parent / f"ctx-{uuid.uuid4().hex[:8]}"
        directory.mkdir()
        nonce = uuid.uuid4().hex
        if self.layer_mb:
            with (directory / "blob").open("wb") as out:
                for _ in range(self.layer_mb):
                    out.write(os.urandom(1_000_000))
            body = "COPY blob /blob\n"
        else:
            body = f"RUN echo {nonce} > /nonce\n"
        (directory / "Dockerfile").write_text(f"FROM {base}\nLABEL bench.nonce={nonce}\n{body}")
        return directory


@dataclass
class Timings:
    seconds: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)

    def add(self, image: str, contender: str, operation: str, value: float) -> None:
        self.seconds.setdefault((image, contender, operation), []).append(value)

    def median(self, image: str, contender: str, operation: str) -> float:
        return statistics.median(self.seconds[(image, contender, operation)])


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cli(*args: str) -> None:
    result = subprocess.run(["docker", *args], capture_output=True, env=_CLI_ENV, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr.decode()[-2000:]}")


def _remove(client: docker.DockerClient, ref: str) -> None:
    with contextlib.suppress(ImageNotFound):
        client.images.remove(ref, force=True)


class Agent:
    def __init__(self, engine: QueueEngine) -> None:
        self.engine = engine

    async def run(self, task_type: TaskType, params: dict[str, Any]) -> float:
        start = time.perf_counter()
        task_id = (await self.engine.submit(DockerTask(task_type=task_type, params=params))).task_id
        task = await self.engine.wait_for(task_id)
        elapsed = time.perf_counter() - start
        if task.status is not TaskStatus.COMPLETED:
            raise RuntimeError(f"{task_type.value} failed: {task.error_code}: {task.error}")
        return elapsed


async def _round_agent(
    agent: Agent, client: docker.DockerClient, context: Path, ref: str, times: Timings, image: str
) -> None:
    repository, tag = ref.rsplit(":", 1)
    times.add(
        image,
        "agent",
        "build",
        await agent.run(TaskType.BUILD, {"context_path": str(context), "tags": [ref]}),
    )
    times.add(
        image,
        "agent",
        "push",
        await agent.run(TaskType.PUSH, {"image_name": repository, "tag": tag}),
    )
    await asyncio.to_thread(_remove, client, ref)
    times.add(
        image,
        "agent",
        "pull",
        await agent.run(TaskType.PULL, {"image_name": repository, "tag": tag}),
    )


def _round_cli(
    client: docker.DockerClient, context: Path, ref: str, times: Timings, image: str
) -> None:
    times.add(image, "cli", "build", _timed(lambda: _cli("build", "-t", ref, str(context))))
    times.add(image, "cli", "push", _timed(lambda: _cli("push", ref)))
    _remove(client, ref)
    times.add(image, "cli", "pull", _timed(lambda: _cli("pull", ref)))


async def bench(rounds: int, big_mb: int) -> Timings:
    client = docker.from_env(timeout=600)
    images = [Image("small", 0), Image(f"large ({big_mb} MB)", big_mb)]
    times = Timings()
    made: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ai-admin-bench-") as tmp:
        work = Path(tmp)
        had_base = bool(client.images.list(name=dockerenv.BUSYBOX_IMAGE))
        base = dockerenv.ensure_busybox_image(client, work)
        if not had_base:  # made here: goes at the end (an untag only, if tests use it too)
            made.append(base)
        base_ref = "ai-admin-bench-base:busybox"  # our own tag, removed at the end
        client.images.get(base).tag(base_ref)
        made.append(base_ref)
        settings = Settings(data_dir=work / "agent", allowed_roots=[work], max_retries=0)
        store = SqliteStore(settings.data_dir / "bench.db")
        try:
            with registry(work) as address:
                async with QueueEngine(store, docker_executors(settings), settings) as engine:
                    agent = Agent(engine)
                    for r in range(rounds):
                        for image in images:
                            repository = f"{address}/bench/{image.name.split()[0]}"
                            order = ["agent", "cli"] if r % 2 == 0 else ["cli", "agent"]
                            for contender in order:
                                ref = f"{repository}:{contender}-{r}"
                                made.append(ref)
                                context = image.context(work, base_ref)
                                if contender == "agent":
                                    await _round_agent(
                                        agent, client, context, ref, times, image.name
                                    )
                                else:
                                    await asyncio.to_thread(
                                        _round_cli, client, context, ref, times, image.name
                                    )
                                _remove(client, ref)
                                shutil.rmtree(context)
                        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
        finally:
            for ref in reversed(made):
                with contextlib.suppress(APIError):
                    _remove(client, ref)
            client.close()
    return times


def table(times: Timings, rounds: int) -> str:
    images = list(dict.fromkeys(key[0] for key in times.seconds))
    rows = [
        f"{'image':<18} {'operation':<9} {'agent s':>8} {'cli s':>8} {'agent/cli':>9}",
        "-" * 56,
    ]
    for image in images:
        for operation in _OPERATIONS:
            agent = times.median(image, "agent", operation)
            cli = times.median(image, "cli", operation)
            rows.append(f"{image:<18} {operation:<9} {agent:>8.3f} {cli:>8.3f} {agent / cli:>9.2f}")
    rows.append(f"medians of {rounds} rounds; agent/cli < 1 means the agent was faster")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--big-mb", type=int, default=100, help="size of the large layer in MB")
    args = parser.parse_args()
    times = asyncio.run(bench(args.rounds, args.big_mb))
    print(table(times, args.rounds))


if __name__ == "__main__":
    main()
