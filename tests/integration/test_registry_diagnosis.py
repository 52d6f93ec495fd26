"""The failures users hit most, produced for real and diagnosed by the agent (issue 15).

Each test makes the real engine (or the real docker CLI and docker-py) meet the failure and
checks what the agent makes of it: the code, whether the queue retries it, and a first
suggestion that names the registry, image, file or engine involved.

- TLS and protocol: the reference registry, run by the engine from the test registry image with
  a self-signed certificate, an expired one, or plain HTTP, published on the docker0 gateway
  address (not an insecure registry to the engine, unlike 127.0.0.0/8);
- expired tokens, immutable tags, a 404 no registry sends, a layer failing its digest: a
  stand-in registry (``tests/registry_standin.py``) answering as ECR, Harbor, a web server or a
  corrupting mirror would, read by the real engine;
- a build context file the client may not read: the docker CLI and docker-py run as a user who
  may not read it;
- the SDK's read timeout and a stream that is not JSON: docker-py (and the agent) against a
  stand-in engine socket (``tests/engine_standin.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import dockerenv
import pytest
from engine_standin import standin_engine
from executor_harness import docker_engine, no_docker_threads, retried, run_task
from registry_standin import CORRUPT_LAYER_DIGEST, EXPIRED_TOKEN, standin_registry

from ai_admin.docker.errors import classify, docker_errors
from ai_admin.errors import ExecutionError
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType

_READY_S = 30.0
_LABEL = "org.ai-admin.test.diagnosis"


@pytest.fixture(autouse=True)
async def _no_docker_call_left() -> AsyncIterator[None]:
    """Every test leaves no Docker call running in a thread of its own."""
    yield
    await no_docker_threads()


# --- driving one task -----------------------------------------------------------------------


async def failed_task(
    tmp: Path, task_type: TaskType, params: dict[str, Any], *, retries: int = 0, **settings: Any
) -> DockerTask:
    """Run one task that must fail (after ``retries`` retries) and return it."""
    async with docker_engine(tmp, **settings) as engine:
        run = await run_task(engine, task_type, params, max_retries=retries)
        assert await retried(engine) == retries
    task = run.task
    assert task.status is TaskStatus.FAILED, (task.status, task.error_code, task.error)
    return task


def assert_diagnosed(task: DockerTask, code: str, *, transient: bool, names: str) -> None:
    assert task.error_code == code, (task.error_code, task.error, task.error_details)
    assert task.error_info is not None
    assert task.error_info.transient is transient
    assert names in task.error_info.suggestions[0], task.error_info.suggestions


def message_of(task: DockerTask) -> str:
    assert task.error_details is not None
    return str(task.error_details["docker_message"])


async def fail_operation(
    operation: str,
    registry: str,
    tmp: Path,
    client: docker.DockerClient,
    busybox_image: str,
    cleanup: dockerenv.ImageCleanup,
    *,
    retries: int = 0,
) -> DockerTask:
    """Pull, push or build (FROM) ``REGISTRY/team/app:1`` through the agent; it must fail."""
    repository = f"{registry}/team/app"
    if operation == "pull":
        params: dict[str, Any] = {"image_name": repository, "tag": "1"}
        return await failed_task(tmp, TaskType.PULL, params, retries=retries)
    if operation == "push":
        client.images.get(busybox_image).tag(repository, "1")
        cleanup.add(f"{repository}:1")
        params = {"image_name": repository, "tag": "1"}
        return await failed_task(tmp, TaskType.PUSH, params, retries=retries)
    params = {"dockerfile": f"FROM {repository}:1\n"}
    return await failed_task(tmp, TaskType.BUILD, params, retries=retries)


# --- TLS and protocol: the reference registry set up three ways -----------------------------


@dataclass(frozen=True)
class BridgeRegistries:
    """``HOST:PORT`` of the reference registry on the docker0 gateway, three ways."""

    self_signed: str
    expired: str
    plain_http: str


def _bridge_gateway(client: docker.DockerClient) -> str:
    configs = client.networks.get("bridge").attrs.get("IPAM", {}).get("Config") or []
    gateways = [c["Gateway"] for c in configs if c.get("Gateway") and ":" not in c["Gateway"]]
    if not gateways:
        pytest.fail("the engine's bridge network has no IPv4 gateway to publish a registry on")
    return str(gateways[0])


def _openssl(*args: str, cwd: Path) -> None:
    tool = dockerenv.find_tool("openssl", "openssl")
    result = subprocess.run(
        [str(tool), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr


def _certificates(conf: Path, address: str) -> None:
    """A self-signed certificate for ``address`` valid now, and one that expired in 2020."""
    subject = ["-subj", f"/CN={address}", "-addext", f"subjectAltName=IP:{address}"]
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "self.key", "-out", "self.crt", *subject, cwd=conf,
    )  # fmt: skip
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes",
        "-keyout", "expired.key", "-out", "expired.csr", *subject, cwd=conf,
    )  # fmt: skip
    (conf / "ca.cnf").write_text(
        "[ca]\ndefault_ca = d\n[d]\ndir = .\ndatabase = index.txt\nnew_certs_dir = .\n"
        "serial = serial\ndefault_md = sha256\npolicy = p\ncopy_extensions = copy\n"
        "unique_subject = no\n[p]\ncommonName = supplied\n"
    )
    (conf / "index.txt").write_text("")
    (conf / "serial").write_text("01\n")
    _openssl(
        "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "expired.key",
        "-in", "expired.csr", "-out", "expired.crt",
        "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", cwd=conf,
    )  # fmt: skip
    for path in conf.iterdir():
        path.chmod(0o644)


def _registry_config(tls: str | None) -> str:
    config = dockerenv.registry_config(auth=False)
    if tls:
        config += f"  tls:\n    certificate: /conf/{tls}.crt\n    key: /conf/{tls}.key\n"
    return config


def _wait_listening(host: str, port: int, container: Any) -> None:
    deadline = time.monotonic() + _READY_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.1)
    pytest.fail(f"registry at {host}:{port} did not listen: {container.logs(tail=20)!r}")


@pytest.fixture(scope="module")
def bridge_registries(
    docker_client: docker.DockerClient,
    registry_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BridgeRegistries]:
    gateway = _bridge_gateway(docker_client)
    conf = tmp_path_factory.mktemp("bridge-registries")
    conf.chmod(0o755)
    _certificates(conf, gateway)
    for name, tls in (("self-signed", "self"), ("expired", "expired"), ("plain-http", None)):
        (conf / f"{name}.yml").write_text(_registry_config(tls))
    run = uuid.uuid4().hex[:8]
    containers = []
    try:
        addresses = []
        for name in ("self-signed", "expired", "plain-http"):
            container = docker_client.containers.run(
                registry_image,
                ["serve", f"/conf/{name}.yml"],
                detach=True,
                name=f"ai-admin-diagnosis-{name}-{run}",
                labels={_LABEL: run},
                volumes={str(conf): {"bind": "/conf", "mode": "ro"}},
                ports={f"{dockerenv.REGISTRY_PORT}/tcp": (gateway, None)},
            )
            containers.append(container)
            container.reload()
            port = int(container.ports[f"{dockerenv.REGISTRY_PORT}/tcp"][0]["HostPort"])
            _wait_listening(gateway, port, container)
            addresses.append(f"{gateway}:{port}")
        yield BridgeRegistries(*addresses)
    finally:
        for container in containers:
            container.remove(force=True)


TLS_CASES = [
    pytest.param(
        "self_signed",
        "x509: certificate signed by unknown authority",
        "Trust {registry}'s certificate: put its CA in /etc/docker/certs.d/{registry}/ca.crt",
        id="self-signed",
    ),
    pytest.param(
        "expired",
        "x509: certificate has expired or is not yet valid",
        "Renew {registry}'s certificate",
        id="expired-certificate",
    ),
    pytest.param(
        "plain_http",
        "http: server gave HTTP response to HTTPS client",
        "{registry} speaks plain HTTP: list it in `insecure-registries` in /etc/docker/daemon.json",
        id="plain-http",
    ),
]


@pytest.mark.parametrize("operation", ["pull", "push", "build"])
@pytest.mark.parametrize(("which", "fragment", "advice"), TLS_CASES)
async def test_a_registry_whose_tls_is_wrong_is_a_registry_problem(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
    bridge_registries: BridgeRegistries,
    which: str,
    fragment: str,
    advice: str,
    operation: str,
) -> None:
    registry = getattr(bridge_registries, which)
    task = await fail_operation(
        operation, registry, tmp_path, docker_client, busybox_image, image_cleanup
    )

    assert fragment in message_of(task)
    assert f'"https://{registry}/v2/"' in message_of(task)
    advice = advice.format(registry=registry)
    assert_diagnosed(task, "DOCKER_REGISTRY_ERROR", transient=False, names=advice)


# --- a stand-in registry read by the real engine --------------------------------------------


@pytest.mark.parametrize("operation", ["pull", "push", "build"])
async def test_an_expired_token_is_an_authentication_failure(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
    operation: str,
) -> None:
    with standin_registry("expired-token") as registry:
        task = await fail_operation(
            operation, registry, tmp_path, docker_client, busybox_image, image_cleanup
        )

    assert EXPIRED_TOKEN in message_of(task)
    if operation != "push":  # the engine wraps a refused pull in Docker Hub's ambiguous words
        assert "may require 'docker login'" in message_of(task)
    names = f"Log in to {registry} again for a fresh token (`docker login {registry}`"
    assert_diagnosed(task, "DOCKER_AUTHENTICATION_FAILED", transient=False, names=names)


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [
        ("ecr-immutable", "tag invalid: The image tag '1' already exists in the 'team/app'"),
        ("harbor-immutable", "Failed to process request due to 'team/app:1' configured as"),
    ],
)
async def test_an_immutable_tag_is_a_push_failure_asking_for_a_new_tag(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
    mode: Any,
    fragment: str,
) -> None:
    with standin_registry(mode) as registry:
        task = await fail_operation(
            "push", registry, tmp_path, docker_client, busybox_image, image_cleanup
        )

    assert fragment in message_of(task)
    names = f"The tag of {registry}/team/app:1 already exists in {registry}"
    assert_diagnosed(task, "DOCKER_PUSH_FAILED", transient=False, names=names)
    assert "push under a new tag" in task.error_info.suggestions[0]  # type: ignore[union-attr]


@pytest.mark.parametrize("operation", ["pull", "push", "build"])
async def test_a_404_no_registry_sends_is_a_registry_problem(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
    operation: str,
) -> None:
    with standin_registry("not-a-registry") as registry:
        task = await fail_operation(
            operation, registry, tmp_path, docker_client, busybox_image, image_cleanup
        )

    assert message_of(task).startswith("error parsing HTTP 404 response body: ")
    assert "404 page not found" in message_of(task)
    names = f"Check that {registry} is the registry's own address"
    if operation == "build":  # the engine's text names no registry: the FROM lines do
        names = "Check the registry addresses on the Dockerfile's FROM lines"
    assert_diagnosed(task, "DOCKER_REGISTRY_ERROR", transient=False, names=names)


@pytest.mark.parametrize(
    ("operation", "code"), [("pull", "DOCKER_PULL_FAILED"), ("build", "DOCKER_BUILD_FAILED")]
)
async def test_a_layer_failing_its_digest_is_retried(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    busybox_image: str,
    image_cleanup: dockerenv.ImageCleanup,
    operation: str,
    code: str,
) -> None:
    with standin_registry("corrupt") as registry:
        task = await fail_operation(
            operation, registry, tmp_path, docker_client, busybox_image, image_cleanup, retries=1
        )

    expected = f"filesystem layer verification failed for digest {CORRUPT_LAYER_DIGEST}"
    assert message_of(task) == expected
    names = "Retry: a fresh download usually succeeds"
    assert_diagnosed(task, code, transient=True, names=names)
    assert task.retry_count == 1


# --- a build context file the client may not read -------------------------------------------


@pytest.fixture
def unreadable_context() -> Iterator[Path]:
    """A context whose ``secret.txt`` the user ``as_reader`` runs as may not read.

    Outside pytest's own temporary directory, which other users may not enter."""
    with tempfile.TemporaryDirectory(prefix="ai-admin-context-") as name:
        context = Path(name)
        context.chmod(0o755)
        (context / "Dockerfile").write_text("FROM scratch\nCOPY . /x\n")
        secret = context / "secret.txt"
        secret.write_text("not for the client\n")
        secret.chmod(0o600 if os.geteuid() == 0 else 0o000)
        yield context


def as_reader(command: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """``command`` as a user who may not read the secret: nobody when run as root (the file is
    root's, mode 600), else the current user (the file is mode 000)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = dockerenv.find_tool("setpriv", "util-linux")
        prefix = [str(setpriv), "--reuid=65534", "--regid=65534", "--clear-groups"]
    environment = {**os.environ, "HOME": str(home)}
    return subprocess.run(
        [*prefix, *command], capture_output=True, text=True, check=False, timeout=120,
        env=environment,
    )  # fmt: skip


def _home(context: Path) -> Path:
    home = context.parent / f"{context.name}-home"
    home.mkdir(mode=0o777, exist_ok=True)
    home.chmod(0o777)
    return home


_CLASSIFY = """
import json, sys
import docker
from ai_admin.docker.errors import classify
try:
    docker.utils.tar(sys.argv[1])
except OSError as exc:
    clf = classify(exc, "build", path=sys.argv[1])
    print(json.dumps([str(exc), clf.code.value, clf.transient, clf.suggestions, clf.details]))
"""


def test_a_context_file_docker_py_may_not_read_is_named(unreadable_context: Path) -> None:
    home = _home(unreadable_context)
    try:
        result = as_reader([sys.executable, "-c", _CLASSIFY, str(unreadable_context)], home)
    finally:
        shutil.rmtree(home)

    assert result.returncode == 0, result.stderr
    message, code, transient, suggestions, details = json.loads(result.stdout)
    secret = f"{unreadable_context}/secret.txt"
    assert message == f"Can not read file in context: {secret}"
    assert (code, transient, details["file"]) == ("DOCKER_PERMISSION_DENIED", False, secret)
    assert suggestions[0].startswith(f"Make '{secret}' readable by the user")


def test_a_context_file_the_docker_cli_may_not_read_is_named(unreadable_context: Path) -> None:
    cli = dockerenv.find_tool("docker", "docker.io")
    home = _home(unreadable_context)
    try:
        result = as_reader([str(cli), "build", str(unreadable_context)], home)
    finally:
        shutil.rmtree(home)

    secret = f"{unreadable_context}/secret.txt"
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"error checking context: no permission to read from '{secret}'", result.stderr
    clf = classify(last, "build", path=str(unreadable_context))
    assert (clf.code.value, clf.transient) == ("DOCKER_PERMISSION_DENIED", False)
    assert clf.suggestions[0].startswith(f"Make '{secret}' readable by the user")


# --- the SDK against an engine that takes requests and misbehaves ---------------------------


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory for Unix sockets (pytest's own paths can pass the 108-byte limit)."""
    with tempfile.TemporaryDirectory(prefix="ai-admin-sock-") as name:
        yield Path(name)


def test_an_engine_that_does_not_answer_in_time_is_a_transient_timeout(socket_dir: Path) -> None:
    with standin_engine(socket_dir / "silent.sock", "silent") as engine:
        client = docker.APIClient(base_url=engine, version="1.41", timeout=1)
        with pytest.raises(ExecutionError) as caught, docker_errors("pull", engine=engine):
            client.inspect_image("team/app:1")
        client.close()

    error = caught.value
    assert "Read timed out" in error.details["docker_message"]
    assert (error.code.value, error.transient) == ("SYSTEM_TIMEOUT", True)
    assert error.suggestions[0].startswith(f"The engine at {engine} took the request")


def test_a_stream_that_stalls_past_the_timeout_is_a_transient_timeout(socket_dir: Path) -> None:
    with standin_engine(socket_dir / "stall.sock", "stall-stream") as engine:
        client = docker.APIClient(base_url=engine, version="1.41", timeout=1)
        with pytest.raises(ExecutionError) as caught, docker_errors("push", engine=engine):
            for _chunk in client.push("127.0.0.1:5000/team/app", tag="1", stream=True, decode=True):
                pass
        client.close()

    error = caught.value
    assert error.details["error_type"] == "ReadTimeoutError"
    assert (error.code.value, error.transient) == ("SYSTEM_TIMEOUT", True)


@pytest.mark.parametrize("task_type", [TaskType.PULL, TaskType.PUSH])
async def test_a_stream_that_is_not_json_is_unknown_not_a_guess(
    tmp_path: Path, socket_dir: Path, task_type: TaskType
) -> None:
    with standin_engine(socket_dir / "broken.sock", "broken-json") as engine:
        params = {"image_name": "127.0.0.1:5000/team/app", "tag": "1"}
        task = await failed_task(tmp_path, task_type, params, docker_host=engine)

    assert_diagnosed(
        task, "UNKNOWN_ERROR", transient=False, names=f"Check what answers at {engine}"
    )
