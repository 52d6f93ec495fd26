"""The image, built from the Dockerfile and run with the README's own ``docker run`` command.

The build is real (``docker build`` on the real engine, the legacy builder, ``--network none``)
on a Python base image made on this machine (``python_image``), as no registry is reachable
here. The run is the README's command with only what a test must change: a free port, a unique
container and volume name, the image tag, and a one-second health-check interval so the wait
for ``healthy`` is short (the check itself is the image's). Then, from this process over HTTP:
``/health``, a token refused and a pull from the test registry run to completion; the process
is checked to run as the image's user with the socket's group; ``docker stop`` with Docker's
default timeout must see it drain and exit 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import dockerenv
import pytest
import requests
from python_image import ROOT, ensure_python_image

import ai_admin

SOCKET = "/var/run/docker.sock"
IMAGE_UID = 10001
DOCKER_STOP_DEFAULT_S = 10.0  # what `docker stop` waits before SIGKILL unless told otherwise
HEALTHY_WITHIN_S = 60.0
_BUILD_CONTEXT = re.compile(r"Sending build context to Docker daemon\s+([\d.]+)([kMG]?B)")
_UNITS = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def _docker(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run the docker CLI; its stdout, or a failure carrying everything it said."""
    result = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"docker {shlex.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _inspect(ref: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads(_docker("inspect", ref))
    return found[0]


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    context_bytes: int
    build_s: float


@pytest.fixture(scope="module")
def python_base(
    docker_client: docker.DockerClient,
    busybox_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    try:
        return ensure_python_image(docker_client, tmp_path_factory.mktemp("python"), busybox_image)
    except dockerenv.HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def agent_image(python_base: str) -> Iterator[BuiltImage]:
    """``docker build`` of the repository's Dockerfile, as the README writes it plus the base."""
    tag = f"ai-admin-test-agent:{uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    output = _docker(
        "build",
        "--network",
        "none",
        "--build-arg",
        f"BASE_IMAGE={python_base}",
        "-t",
        tag,
        str(ROOT),
        env={"DOCKER_BUILDKIT": "0"},  # the engine (20.10) has no BuildKit session here
        timeout=600,
    )
    build_s = time.monotonic() - started
    sent = _BUILD_CONTEXT.search(output)
    assert sent is not None, output
    try:
        yield BuiltImage(tag, round(float(sent[1]) * _UNITS[sent[2]]), build_s)
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)


def readme_run_command() -> list[str]:
    """The ``docker run`` command of the README's container section, as words."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running the agent in a container", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no ```sh block in the README's container section"
    lines = block[1].replace("\\\n", " ").splitlines()
    runs = [line for line in lines if line.lstrip().startswith("docker run ")]
    assert len(runs) == 1, lines
    return shlex.split(runs[0].replace("$(stat -c %g /var/run/docker.sock)", "SOCKET_GID"))


def as_test_runs_it(command: list[str], *, image: str, name: str, volume: str) -> list[str]:
    """The README's command with the changes a test needs, each one checked to apply."""
    replacements = {
        "--name": ("ai-admin", name),
        "-p": ("127.0.0.1:8060:8060", "127.0.0.1::8060"),  # a free port on loopback
        "--group-add": ("SOCKET_GID", str(os.stat(SOCKET).st_gid)),
    }
    words = list(command)
    for flag, (documented, used) in replacements.items():
        at = words.index(flag)
        assert words[at + 1] == documented, (flag, words)
        words[at + 1] = used
    volume_at = words.index("ai-admin-data:/data")
    words[volume_at] = f"{volume}:/data"
    assert words[-1] == "ai-admin", "the image is the command's last word"
    return [*words[1:-1], "--health-interval", "1s", image]


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str]) -> Iterator[str]:
    """``docker run`` ARGS; the container and its volume are removed afterwards."""
    name = args[args.index("--name") + 1]
    volume = next(a for a in args if a.endswith(":/data")).split(":")[0]
    try:
        _docker(*args, env=env)
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", volume], capture_output=True, check=False)


def wait_healthy(name: str) -> float:
    """Seconds until Docker's health check says healthy; fails with the check's own log."""
    started = time.monotonic()
    state: dict[str, Any] = {}
    while time.monotonic() - started < HEALTHY_WITHIN_S:
        state = _inspect(name)["State"]
        status = state.get("Health", {}).get("Status")
        if status == "healthy":
            return time.monotonic() - started
        if not state["Running"]:
            break
        time.sleep(0.25)  # polling Docker's record of the check, which runs every second
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
    pytest.fail(f"not healthy: {json.dumps(state, indent=1)}\n{logs.stdout}{logs.stderr}")


def process_ids(name: str) -> dict[str, list[int]]:
    """Uid, Gid and Groups of the container's main process, read from the host's /proc."""
    pid = _inspect(name)["State"]["Pid"]
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            fields[key] = [int(v) for v in value.split()]
    return fields


def submit(session: requests.Session, url: str, action: str, params: dict[str, Any]) -> str:
    answer = session.post(f"{url}/cmd", json={"action": action, "params": params}, timeout=30)
    body = answer.json()
    assert body["success"], body
    return str(body["data"]["task_id"])


def wait_status(
    session: requests.Session, url: str, task_id: str, statuses: set[str]
) -> dict[str, Any]:
    """The task once its status is one of ``statuses`` (polling the agent's own record)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answer = session.post(
            f"{url}/cmd",
            json={"action": "queue_task_status", "params": {"task_id": task_id}},
            timeout=30,
        ).json()
        assert answer["success"], answer
        if answer["data"]["status"]["value"] in statuses:
            return dict(answer["data"])
        time.sleep(0.2)
    pytest.fail(f"the task did not reach {statuses} within 120 s: {answer}")


def test_the_image_runs_as_the_readme_says(
    agent_image: BuiltImage,
    open_registry: str,
    busybox_image: str,
    docker_client: docker.DockerClient,
    image_cleanup: dockerenv.ImageCleanup,
) -> None:
    # Something to pull: a small image in the test registry, absent from the engine.
    repository = f"{open_registry}/ai-admin-test/container-pull"
    tag = uuid.uuid4().hex[:8]
    image_cleanup.add(f"{repository}:{tag}")
    dockerenv.build_random_data_image(docker_client, f"{repository}:{tag}", 1)
    dockerenv.push_image(docker_client, repository, tag)
    docker_client.images.remove(f"{repository}:{tag}")

    token = secrets.token_urlsafe(24)
    name = f"ai-admin-test-{uuid.uuid4().hex[:8]}"
    args = as_test_runs_it(
        readme_run_command(), image=agent_image.tag, name=name, volume=f"{name}-data"
    )
    with running(args, env={"AI_ADMIN_TOKEN": token}):
        healthy_s = wait_healthy(name)
        host_port = _docker("port", name, "8060/tcp").split()[0]
        assert host_port.startswith("127.0.0.1:")
        url = f"http://{host_port}"

        ids = process_ids(name)
        assert ids["Uid"] == [IMAGE_UID] * 4
        assert ids["Gid"] == [IMAGE_UID] * 4
        assert os.stat(SOCKET).st_gid in ids["Groups"]

        with requests.Session() as session:
            session.trust_env = False  # never through a proxy from the environment
            health = session.get(f"{url}/health", timeout=10).json()
            assert health["status"] == "ok"
            assert health["docker"]["reachable"] is True
            refused = session.post(f"{url}/cmd", json={"action": "queue_status"}, timeout=10)
            assert refused.status_code == 401
            session.headers["Authorization"] = f"Bearer {token}"
            pull = submit(session, url, "docker_pull", {"image_name": repository, "tag": tag})
            done = wait_status(session, url, pull, {"completed", "failed", "cancelled", "timeout"})
            assert done["status"]["value"] == "completed", done
            assert done["result"]["bytes_downloaded"] > 1_000_000  # the random layer moved
            docker_client.images.get(f"{repository}:{tag}")  # the engine has it now

            # A build still running when `docker stop` comes: the drain must fit the timeout.
            slow = f"FROM {busybox_image}\nRUN sleep 60 # {uuid.uuid4().hex}\n"
            build = submit(session, url, "docker_build", {"dockerfile": slow})
            wait_status(session, url, build, {"building"})
            started = time.monotonic()
            _docker("stop", name, timeout=60)  # Docker's default stop timeout
            stop_s = time.monotonic() - started
        state = _inspect(name)["State"]
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
    assert state["ExitCode"] == 0, logs.stderr[-3000:]
    assert not state["OOMKilled"]
    assert stop_s < DOCKER_STOP_DEFAULT_S, f"docker stop took {stop_s:.1f} s: killed, not drained"
    assert "shutting down: running tasks get 7.0 s to finish" in logs.stderr
    assert "stopped" in logs.stderr
    assert "Traceback" not in logs.stdout + logs.stderr
    assert token not in logs.stdout + logs.stderr
    print(  # the figures the report quotes: pytest -s shows them
        f"\nbuild context {agent_image.context_bytes / 1000:.0f} kB, build "
        f"{agent_image.build_s:.1f} s, image "
        f"{docker_client.images.get(agent_image.tag).attrs['Size'] / 1e6:.0f} MB, healthy after "
        f"{healthy_s:.1f} s, docker stop {stop_s:.1f} s"
    )


def test_the_image_says_how_it_runs(agent_image: BuiltImage) -> None:
    """User, health check and a drain that fits Docker's default stop timeout, from the image
    itself; the version its metadata carries is the package's single one."""
    config = _inspect(agent_image.tag)["Config"]
    assert config["User"] == f"{IMAGE_UID}:{IMAGE_UID}"
    assert config["Healthcheck"]["Test"] == ["CMD", "ai-admin", "health", "--timeout", "5"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["AI_ADMIN_HOST"] == "0.0.0.0"  # noqa: S104 - the container's own interface
    assert float(env["AI_ADMIN_SHUTDOWN_GRACE_S"]) + 2 <= DOCKER_STOP_DEFAULT_S
    versions = _docker(
        "run",
        "--rm",
        "--network",
        "none",
        agent_image.tag,
        "python",
        "-c",
        "import importlib.metadata as m, ai_admin; meta = m.metadata('ai-admin'); "
        "print(meta['Version'], ai_admin.__version__, meta['License-Expression'])",
    ).split()
    assert versions == [ai_admin.__version__, ai_admin.__version__, "MIT"]
    # .dockerignore keeps the context to what the image needs (the package, its dashboard
    # included, about 1 MB); tests/ or .venv/ would be tens of MB.
    assert agent_image.context_bytes < 1_500_000


def test_without_a_token_the_container_says_what_to_set(agent_image: BuiltImage) -> None:
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", agent_image.tag],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token: set AI_ADMIN_TOKEN" in result.stderr


def test_the_token_can_come_from_a_mounted_secret_file(
    agent_image: BuiltImage, tmp_path: Path
) -> None:
    """``/run/secrets/ai_admin_token``, readable by the image's user only, as the README says."""
    token = secrets.token_urlsafe(24)
    secret = tmp_path / "token"
    secret.write_text(token + "\n")
    os.chown(secret, IMAGE_UID, IMAGE_UID)
    secret.chmod(0o400)
    name = f"ai-admin-test-{uuid.uuid4().hex[:8]}"
    args = [
        "run",
        "-d",
        "--name",
        name,
        "-p",
        "127.0.0.1::8060",
        "-v",
        f"{secret}:/run/secrets/ai_admin_token:ro",
        "-v",
        f"{name}-data:/data",
        "--health-interval",
        "1s",
        "--group-add",
        str(os.stat(SOCKET).st_gid),
        "-v",
        f"{SOCKET}:{SOCKET}",
        agent_image.tag,
    ]
    with running(args, env={}):
        wait_healthy(name)
        url = f"http://{_docker('port', name, '8060/tcp').split()[0]}"
        with requests.Session() as session:
            session.trust_env = False
            stats = session.get(f"{url}/api/stats", timeout=10)
            assert stats.status_code == 401
            session.headers["Authorization"] = f"Bearer {token}"
            assert session.get(f"{url}/api/stats", timeout=10).status_code == 200
        _docker("stop", name, timeout=60)
        assert _inspect(name)["State"]["ExitCode"] == 0
