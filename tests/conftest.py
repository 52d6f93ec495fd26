"""Session fixtures for the real-engine tests: one Docker engine, two registries, base images.

Everything is lazy: a test that asks for none of these fixtures (every unit test) never talks
to Docker or runs Compose. A test that does ask and finds no engine or tool FAILS with what is
missing and how to fix it (``scripts/ensure-docker``): these tests are never skipped, so a
machine without Docker cannot pass the suite by accident.

The registries come from ``tests/docker-compose.yml`` through pytest-docker, under a project
name unique to this run, and are removed (``down -v``) when the session ends.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import docker
import dockerenv
import pytest
import requests
from docker.errors import DockerException
from loguru import logger
from pytest_docker.plugin import Services

# A configuration file or secrets installed on the machine running the tests change nothing,
# in this process or in the agents the tests start (they inherit the environment): the places
# searched by default are empty directories of this run.
_THIS_RUN = Path(tempfile.mkdtemp(prefix="ai-admin-tests-"))
atexit.register(shutil.rmtree, _THIS_RUN, ignore_errors=True)
os.environ["XDG_CONFIG_HOME"] = str(_THIS_RUN / "xdg-config")
os.environ["AI_ADMIN_SECRETS_DIR"] = str(_THIS_RUN / "secrets")
(_THIS_RUN / "secrets").mkdir()

_ENSURE = "run scripts/ensure-docker (as root on Debian/Ubuntu it installs and starts everything)"
_READY_TIMEOUT_S = 30.0

# Fixtures that need the real engine; a test using any of them gets the `docker` marker.
_DOCKER_FIXTURES = frozenset(
    {
        "docker_client",
        "docker_services",
        "open_registry",
        "auth_registry",
        "busybox_image",
        "registry_image",
        "image_cleanup",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real-engine fixture, so `-m docker` / `-m "not docker"` work."""
    for item in items:
        if _DOCKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(autouse=True)
def _agent_log_on() -> Iterator[None]:
    """The package is silent as a library; tests that read its log lines add their own sinks."""
    logger.enable("ai_admin")
    yield
    logger.disable("ai_admin")


def _fail_harness(what: str) -> NoReturn:
    """The one way the harness gives up: a failure (never a skip) naming the fix."""
    pytest.fail(f"{what}\nThe real-engine tests need it: {_ENSURE}.", pytrace=False)


# --- engine and images ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A Docker SDK client for the engine of DOCKER_HOST (or the local socket), proven to answer.

    Generous read timeout: builds and pushes of the random-data images can be slow on a busy
    machine, and a timeout there would look like an engine failure.
    """
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except (DockerException, requests.exceptions.RequestException, OSError) as exc:
        error = str(exc)
    else:
        error = ""
    if error:  # failed outside the except block: the report is one message, not a chain
        where = os.environ.get("DOCKER_HOST") or "the local socket (/var/run/docker.sock)"
        _fail_harness(f"No Docker engine answers at {where}: {error}")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def registry_image(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Tag of the registry image (built from host binaries unless already up to date)."""
    try:
        return dockerenv.ensure_registry_image(docker_client, tmp_path_factory.mktemp("registry"))
    except dockerenv.HarnessError as exc:
        error = str(exc)
    _fail_harness(error)


@pytest.fixture(scope="session")
def busybox_image(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Tag of the busybox base image: ``FROM`` it in test Dockerfiles to get ``sh`` and friends."""
    try:
        return dockerenv.ensure_busybox_image(docker_client, tmp_path_factory.mktemp("busybox"))
    except dockerenv.HarnessError as exc:
        error = str(exc)
    _fail_harness(error)


# --- pytest-docker overrides ----------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    """``docker compose`` (v2 plugin) when it works, else Compose v1's ``docker-compose``.

    pytest-docker assumes v2; Debian's package is v1 (1.29).
    """
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False, timeout=30
        )
        if probe.returncode == 0:
            return "docker compose"
    if shutil.which("docker-compose"):
        return "docker-compose"
    _fail_harness(
        "Neither `docker compose` (v2) nor `docker-compose` (v1, apt package docker-compose) "
        "is installed."
    )


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    """The compose file next to this conftest, wherever pytest was started from."""
    return str(Path(__file__).with_name("docker-compose.yml"))


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    """Unique per run: two runs (or a leftover of a crashed one) never share containers."""
    return f"ai-admin-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def docker_setup(
    registry_image: str,
    docker_client: docker.DockerClient,
    docker_compose_project_name: str,
) -> Iterator[list[str]]:
    """``up -d`` once the registry image exists (it is never pulled).

    Neither ``--build`` (nothing to build) nor ``--wait`` (Compose v1 lacks it; the registry
    fixtures wait on ``/v2/`` themselves). pytest-docker runs ``down`` only when ``up``
    succeeded, so a sweep of this run's project at session end catches a half-done ``up``.
    """
    yield ["up -d"]
    label = f"com.docker.compose.project={docker_compose_project_name}"
    for container in docker_client.containers.list(all=True, filters={"label": [label]}):
        container.remove(force=True)
    for network in docker_client.networks.list(filters={"label": [label]}):
        with contextlib.suppress(DockerException):
            network.remove()


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    """Remove the registries, their network and volumes at the end of the session."""
    return ["down -v --remove-orphans"]


# --- registries -----------------------------------------------------------------------------


def _wait_for_v2(
    client: docker.DockerClient, project: str, service: str, address: str, expected: int
) -> None:
    """Block until ``http://ADDRESS/v2/`` answers ``expected``, or fail with the registry's log.

    The container is up before the registry listens; a test racing it would see a network
    error that has nothing to do with what it tests.
    """
    url = f"http://{address}/v2/"
    last = "no answer yet"
    deadline = time.monotonic() + _READY_TIMEOUT_S
    with requests.Session() as session:
        session.trust_env = False  # never through an HTTP proxy from the environment
        while time.monotonic() < deadline:
            try:
                status = session.get(url, timeout=2).status_code
            except requests.RequestException as exc:
                last = str(exc)
            else:
                if status == expected:
                    return
                last = f"HTTP {status}"
            time.sleep(0.1)
    logs = ""
    with contextlib.suppress(DockerException):
        for container in client.containers.list(
            all=True,
            filters={"label": [f"com.docker.compose.project={project}"]},
        ):
            if container.labels.get("com.docker.compose.service") == service:
                logs = container.logs(tail=30).decode(errors="replace")
    pytest.fail(
        f"{service} at {url} did not answer {expected} within {_READY_TIMEOUT_S:.0f}s "
        f"(last: {last}). Container log tail:\n{logs}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def open_registry(
    docker_client: docker.DockerClient,
    docker_services: Services,
    docker_compose_project_name: str,
) -> str:
    """``127.0.0.1:PORT`` of the registry without authentication, ready to serve."""
    port = docker_services.port_for("registry-open", dockerenv.REGISTRY_PORT)
    address = f"127.0.0.1:{port}"
    _wait_for_v2(docker_client, docker_compose_project_name, "registry-open", address, 200)
    return address


@pytest.fixture(scope="session")
def auth_registry(
    docker_client: docker.DockerClient,
    docker_services: Services,
    docker_compose_project_name: str,
) -> dockerenv.AuthRegistry:
    """The htpasswd registry (``.address``, ``.username``, ``.password``), ready to refuse."""
    port = docker_services.port_for("registry-auth", dockerenv.REGISTRY_PORT)
    address = f"127.0.0.1:{port}"
    _wait_for_v2(docker_client, docker_compose_project_name, "registry-auth", address, 401)
    return dockerenv.AuthRegistry(address, dockerenv.TEST_USERNAME, dockerenv.TEST_PASSWORD)


# --- per-test cleanup -----------------------------------------------------------------------


@pytest.fixture
def image_cleanup(docker_client: docker.DockerClient) -> Iterator[dockerenv.ImageCleanup]:
    """Register each image a test creates with ``image_cleanup.add(ref)``; gone at teardown."""
    cleanup = dockerenv.ImageCleanup(docker_client)
    try:
        yield cleanup
    finally:
        cleanup.remove_all()
