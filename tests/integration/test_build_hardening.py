"""Builds cannot reach the host, nor read outside ``allowed_roots``, against the real engine.

- ``network_mode`` outside ``allowed_network_modes`` is refused when submitted (a real agent
  answers 400 with its code) and when run (a task that came in through the Python API); with
  ``host`` allowed in the configuration, a build's ``RUN`` really reaches a loopback-only
  service of the Docker host, which is why it is refused by default.
- The symlink-swap race: while a big file of the context streams to the engine, a directory of
  the context is swapped for a symlink to a directory outside the roots. Nothing from there
  reaches the engine or the image; the build fails naming the directory.
- A ``.dockerignore`` that is a FIFO or too big: refused at once with a code, no hang.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from agent_process import OPERATOR_TOKEN, AgentProcess, serving
from dockerenv import ImageCleanup
from http_client import client

from ai_admin.config import Settings
from ai_admin.docker import build as build_module
from ai_admin.docker.executors import docker_executors
from ai_admin.errors import ErrorCode
from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore

pytestmark = pytest.mark.docker

_WAIT_S = 120.0
_DEFAULT_MODES = ["default", "bridge", "none"]
SECRET = "secret-outside-the-roots-" + uuid.uuid4().hex


def _uid() -> str:
    return uuid.uuid4().hex[:12]


# --- agents -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("roots")


def _agent_env(roots: Path, modes: list[str] | None = None) -> dict[str, str]:
    env = {"AI_ADMIN_ALLOWED_ROOTS": json.dumps([str(roots)])}
    if modes is not None:
        env["AI_ADMIN_ALLOWED_NETWORK_MODES"] = json.dumps(modes)
    return env


@pytest.fixture(scope="module")
def agent_options(roots: Path) -> dict[str, Any]:
    """conftest's ``agent``: the default network modes."""
    return {"env": _agent_env(roots)}


@pytest.fixture(scope="module")
def host_agent(tmp_path_factory: pytest.TempPathFactory, roots: Path) -> Iterator[AgentProcess]:
    """An agent whose operator allowed ``host`` on top of the defaults."""
    data = tmp_path_factory.mktemp("host-agent") / "data"
    with serving(data, env=_agent_env(roots, [*_DEFAULT_MODES, "host"])) as running:
        yield running


@contextlib.asynccontextmanager
async def _engine(tmp: Path, **overrides: Any) -> AsyncIterator[QueueEngine]:
    """The queue engine and Docker executors in this process (the Python API's way in)."""
    values: dict[str, Any] = {"data_dir": tmp, "allowed_roots": [tmp], "max_retries": 0}
    settings = Settings(**{**values, **overrides})
    engine = QueueEngine(SqliteStore(tmp / "q.db"), docker_executors(settings), settings)
    async with engine:
        yield engine


async def _run_build(engine: QueueEngine, params: dict[str, Any]) -> DockerTask:
    submitted = await engine.submit(DockerTask(task_type=TaskType.BUILD, params=params))
    return await engine.wait_for(submitted.task_id, timeout_s=_WAIT_S)


# --- network_mode -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["host", "container:ai-admin-some-container", "my-user-net"])
async def test_a_network_mode_outside_the_allowed_ones_is_refused_at_submit(
    agent: AgentProcess, busybox_image: str, mode: str
) -> None:
    async with client(agent.url, OPERATOR_TOKEN) as api:
        before = await api.total_tasks()
        answer = await api.refused(
            api.cmd(
                {
                    "action": "docker_build",
                    "params": {"dockerfile": f"FROM {busybox_image}\n", "network_mode": mode},
                }
            ),
            ErrorCode.VALIDATION_OPTION_NOT_ALLOWED,
            400,
        )
        assert await api.total_tasks() == before  # nothing queued
    error = answer.body["error"]
    assert "network_mode" in error["message"]
    assert mode in error["message"]
    assert all(m in error["message"] for m in _DEFAULT_MODES)
    assert error["details"] == {
        "option": "network_mode",
        "value": mode,
        "allowed": _DEFAULT_MODES,
        "setting": "allowed_network_modes",
    }
    assert any("allowed_network_modes" in s for s in error["suggestions"])


async def test_an_allowed_network_mode_is_accepted_and_built(
    agent: AgentProcess, busybox_image: str, image_cleanup: ImageCleanup
) -> None:
    ref = image_cleanup.add(f"ai-admin-it/network-none:{_uid()}")
    dockerfile = f"FROM {busybox_image}\nRUN echo built-{ref.rsplit(':', 1)[1]}\n"
    async with client(agent.url, OPERATOR_TOKEN) as api:
        data = await api.ok("docker_build", dockerfile=dockerfile, tags=[ref], network_mode="none")
        state = await api.finished(data["task_id"], timeout_s=_WAIT_S)
    assert state["status"]["value"] == "completed", state


class _LoopbackService:
    """An HTTP server on the Docker host's loopback only, answering with a nonce."""

    def __init__(self) -> None:
        self.nonce = f"loopback-only-{_uid()}"
        body = self.nonce.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _LoopbackService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _reach_loopback(base: str, port: int) -> str:
    return f"FROM {base}\nRUN wget -q -O- http://127.0.0.1:{port}/ && echo\n"


async def test_network_mode_host_when_configured_is_accepted_and_reaches_the_host(
    agent: AgentProcess,
    host_agent: AgentProcess,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    ref = image_cleanup.add(f"ai-admin-it/network-host:{_uid()}")
    with _LoopbackService() as service:
        params = {
            "dockerfile": _reach_loopback(busybox_image, service.port),
            "tags": [ref],
            "network_mode": "host",
            "no_cache": True,
        }
        # The same build, refused by the default configuration.
        async with client(agent.url, OPERATOR_TOKEN) as api:
            await api.refused(
                api.cmd({"action": "docker_build", "params": params}),
                ErrorCode.VALIDATION_OPTION_NOT_ALLOWED,
                400,
            )
        async with client(host_agent.url, OPERATOR_TOKEN) as api:
            data = await api.ok("docker_build", **params)
            await api.finished(data["task_id"], timeout_s=_WAIT_S)
            state = await api.ok("queue_task_status", task_id=data["task_id"], include_logs=True)
    assert state["status"]["value"] == "completed", state
    assert service.nonce in "\n".join(state["logs"])


async def test_a_refused_network_mode_fails_a_task_from_the_python_api_before_docker(
    tmp_path: Path, busybox_image: str
) -> None:
    async with _engine(tmp_path) as engine:
        task = await _run_build(
            engine, {"dockerfile": f"FROM {busybox_image}\n", "network_mode": "host"}
        )
    assert task.status is TaskStatus.FAILED
    assert task.error_code == ErrorCode.VALIDATION_OPTION_NOT_ALLOWED
    assert "'host' is not allowed" in (task.error or "")
    assert task.retry_count == 0


async def test_host_allowed_in_the_settings_runs_from_the_python_api(
    tmp_path: Path, busybox_image: str, image_cleanup: ImageCleanup
) -> None:
    ref = image_cleanup.add(f"ai-admin-it/network-host-api:{_uid()}")
    with _LoopbackService() as service:
        async with _engine(tmp_path, allowed_network_modes=["host"]) as engine:
            params = {
                "dockerfile": _reach_loopback(busybox_image, service.port),
                "tags": [ref],
                "network_mode": "host",
            }
            task = await _run_build(engine, params)
    assert task.status is TaskStatus.COMPLETED, task.error
    assert service.nonce in "\n".join(task.logs)


# --- the symlink-swap race --------------------------------------------------------------------

_BIG_BYTES = 8 << 20


def _race_context(tmp: Path, base: str) -> tuple[Path, Path]:
    """(context under tmp/roots, a directory outside the roots holding the secret).

    ``sub/notes.txt`` is a decoy the swap replaces; ``sub`` will point to ``../../outside``,
    and the context holds an empty ``outside/`` so that, would the reader follow the swapped
    directory, the engine could unpack what it read into the image at ``/ctx/outside``.
    """
    context = tmp / "roots" / "ctx"
    (context / "sub").mkdir(parents=True)
    (context / "outside").mkdir()
    (context / "a-big.bin").write_bytes(os.urandom(_BIG_BYTES))
    (context / "sub" / "notes.txt").write_text("decoy\n")
    (context / "Dockerfile").write_text(
        f"FROM {base}\nCOPY . /ctx/\nRUN cat /ctx/outside/notes.txt /ctx/sub/notes.txt; true\n"
    )
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_text(SECRET + "\n")
    return context, outside


def _swap_while_streaming(
    monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None], sent: list[bytes]
) -> None:
    """The hook: the build's context stream, recorded; ``swap`` runs once a big file's first
    block has gone to the engine, in the thread that sends it (so the file is open, mid-way)."""
    real = build_module.stream_context

    def hooked(*args: Any, **kwargs: Any) -> tuple[str, Iterator[bytes]]:
        name, stream = real(*args, **kwargs)

        def blocks() -> Iterator[bytes]:
            swapped = False
            for block in stream:
                sent.append(block)
                yield block
                if not swapped and len(block) == 1 << 20:
                    swapped = True
                    swap()

        return name, blocks()

    monkeypatch.setattr(build_module, "stream_context", hooked)


def _files_in_image(client: docker.DockerClient, ref: str) -> str:
    """Every regular file under /ctx in the image, with its content."""
    script = 'for f in $(find /ctx -type f ! -name a-big.bin); do echo "$f"; cat "$f"; done'
    return client.containers.run(ref, ["sh", "-c", script], remove=True).decode()


async def test_a_directory_swapped_for_a_symlink_while_the_context_streams_leaks_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    docker_client: docker.DockerClient,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    context, outside = _race_context(tmp_path, busybox_image)

    def swap() -> None:
        (context / "sub").rename(context / "sub.moved")
        (context / "sub").symlink_to("../../outside", target_is_directory=True)
        assert (context / "sub" / "notes.txt").read_text() == SECRET + "\n"

    sent: list[bytes] = []
    _swap_while_streaming(monkeypatch, swap, sent)
    ref = image_cleanup.add(f"ai-admin-it/swap-race:{_uid()}")
    async with _engine(tmp_path, allowed_roots=[tmp_path / "roots"]) as engine:
        task = await _run_build(engine, {"context_path": str(context), "tags": [ref]})
    assert (context / "sub").is_symlink(), "the swap did not happen"
    if task.status is TaskStatus.COMPLETED:
        assert SECRET not in _files_in_image(docker_client, ref)
    assert SECRET.encode() not in b"".join(sent)
    assert SECRET not in "\n".join(task.logs)
    assert task.status is TaskStatus.FAILED
    assert task.error_code == ErrorCode.DOCKER_BUILD_FAILED
    assert "sub is no longer a directory" in (task.error or "")
    assert str(outside) not in json.dumps(task.public_dict())
    assert not docker_client.images.list(name=ref)


# --- .dockerignore that is not a small regular file -------------------------------------------


def _fifo_dockerignore(context: Path) -> None:
    os.mkfifo(context / ".dockerignore")


def _oversize_dockerignore(context: Path) -> None:
    (context / ".dockerignore").write_bytes(b"*.log\n" + b"#" * (1 << 20))


_BAD_DOCKERIGNORES = {
    "fifo": (_fifo_dockerignore, "is not a regular file"),
    "oversize": (_oversize_dockerignore, "is larger than 1048576 bytes"),
}


def _context_with(where: Path, kind: str, base: str) -> Path:
    context = where / f"ignore-{kind}-{_uid()}"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(f"FROM {base}\nCOPY . /ctx/\n")
    _BAD_DOCKERIGNORES[kind][0](context)
    return context


@pytest.mark.timeout(120)  # a hang is the bug: fail well before the suite's limit
@pytest.mark.parametrize("kind", sorted(_BAD_DOCKERIGNORES))
async def test_a_bad_dockerignore_is_refused_at_submit_without_hanging(
    agent: AgentProcess, roots: Path, busybox_image: str, kind: str
) -> None:
    context = _context_with(roots, kind, busybox_image)
    async with client(agent.url, OPERATOR_TOKEN) as api:
        answer = await api.refused(
            api.cmd({"action": "docker_build", "params": {"context_path": str(context)}}),
            ErrorCode.VALIDATION_INVALID_PARAMS,
            400,
        )
        await api.ok("queue_status")  # and it still answers
    error = answer.body["error"]
    assert f".dockerignore {_BAD_DOCKERIGNORES[kind][1]}" in error["message"]
    assert error["details"] == {"context_path": str(context), "file": ".dockerignore"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(_BAD_DOCKERIGNORES))
async def test_a_bad_dockerignore_fails_a_queued_build_without_hanging(
    tmp_path: Path, busybox_image: str, kind: str
) -> None:
    context = _context_with(tmp_path, kind, busybox_image)
    async with _engine(tmp_path) as engine:
        task = await _run_build(engine, {"context_path": str(context)})
    assert task.status is TaskStatus.FAILED
    assert task.error_code == ErrorCode.VALIDATION_INVALID_PARAMS
    assert f".dockerignore {_BAD_DOCKERIGNORES[kind][1]}" in (task.error or "")
