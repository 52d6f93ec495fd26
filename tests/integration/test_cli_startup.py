"""The ``ai-admin`` command as installed: ``serve`` refuses a bad configuration in one line and
never starts half-configured; ``--version`` and ``version`` print the package's version;
``health`` says whether a running agent is up and reaches its Docker engine; ``--help`` and
the client commands start without loading the agent's heavy parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest
from agent_process import launch

import ai_admin
from ai_admin.cli.health import health_url
from ai_admin.config import Settings

_SERVE = [sys.executable, "-c", "from ai_admin.cli.main import app; app()", "serve"]
# The console script pip installed next to this interpreter.
_AI_ADMIN = str(Path(sys.executable).with_name("ai-admin"))


def _serve(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AI_ADMIN_")}
    return subprocess.run(
        [*_SERVE, "--data-dir", str(tmp_path / "data"), "--port", "0", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({"AI_ADMIN_MAX_CONCURRENT": "zero"}, (), "max_concurrent = 'zero'"),
        ({"AI_ADMIN_MAX_CONCURENT": "2"}, (), "AI_ADMIN_MAX_CONCURENT: unknown setting"),
        ({}, ("--port", "70000"), "port = 70000"),
        ({"AI_ADMIN_LOG_FORMAT": "xml"}, (), "log_format = 'xml'"),
    ],
)
def test_a_wrong_value_stops_start_up_with_one_line_naming_it(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...], expected: str
) -> None:
    result = _serve(tmp_path, *args, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ai-admin: configuration error: ")
    assert expected in lines[0]
    assert not (tmp_path / "data").exists()  # nothing was created: the agent never started


def test_a_misspelled_key_in_the_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "ai-admin.toml"
    config.write_text("max_concurent = 2\n")
    result = _serve(tmp_path, "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ai-admin: configuration error: max_concurent: unknown setting "
        "(config/ai-admin.toml lists the keys)"
    )


def test_the_shipped_configuration_file_documents_every_setting_with_its_default() -> None:
    from ai_admin.config import Settings, load_settings

    path = Path(__file__).parents[2] / "config" / "ai-admin.toml"
    text = path.read_text()
    for key in Settings.model_fields:
        assert key in text, f"{key} is not documented in {path}"
    assert load_settings(path).model_dump() == Settings().model_dump()


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AI_ADMIN_")}
    return subprocess.run(
        [_AI_ADMIN, *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("args", [("--version",), ("version",)])
def test_the_installed_command_prints_the_packages_version(args: tuple[str, ...]) -> None:
    result = _run(*args)
    assert (result.returncode, result.stdout, result.stderr) == (0, ai_admin.__version__ + "\n", "")


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8060/health"),  # noqa: S104
        ("::", "http://[::1]:8060/health"),
        ("10.1.2.3", "http://10.1.2.3:8060/health"),
        ("::1", "http://[::1]:8060/health"),
    ],
)
def test_health_asks_an_agent_on_every_interface_on_loopback(host: str, url: str) -> None:
    assert health_url(Settings(host=host)) == url


def test_health_says_ok_while_the_agent_reaches_its_engine(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    agent = launch(tmp_path / "data")
    try:
        port = agent.url.rpartition(":")[2]
        result = _run("health", env={"AI_ADMIN_PORT": port})
    finally:
        assert agent.stop() == 0
    assert result.returncode == 0, result.stderr
    version = docker_client.version()["Version"]
    assert result.stdout == f"ok: Docker engine {version} reachable\n"


def test_health_fails_when_the_engine_is_out_of_reach_or_nothing_answers(tmp_path: Path) -> None:
    nowhere = f"unix://{tmp_path / 'no-engine.sock'}"
    agent = launch(tmp_path / "data", env={"DOCKER_HOST": nowhere})
    try:
        port = agent.url.rpartition(":")[2]
        degraded = _run("health", env={"AI_ADMIN_PORT": port})
    finally:
        assert agent.stop() == 0
    assert degraded.returncode == 1
    assert degraded.stderr.startswith(
        "degraded: Docker engine not reachable (DOCKER_DAEMON_UNAVAILABLE: "
    )
    gone = _run("health", "--timeout", "2", env={"AI_ADMIN_PORT": port})
    assert gone.returncode == 1
    assert gone.stderr.startswith(f"http://127.0.0.1:{port}/health: ")


def test_python_dash_m_ai_admin_is_the_same_command() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AI_ADMIN_")}
    version = subprocess.run(
        [sys.executable, "-m", "ai_admin", "--version"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (version.returncode, version.stdout) == (0, ai_admin.__version__ + "\n")
    usage = subprocess.run(
        [sys.executable, "-m", "ai_admin", "--help"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Usage: ai-admin [OPTIONS] COMMAND" in usage.stdout  # named as the command, not __main__


# Runs the command line as the console script does, then names every heavy module it loaded.
_LOADED_AFTER = """
import json, sys
from ai_admin.cli.main import app
try:
    app(args=sys.argv[1:], prog_name="ai-admin")
except SystemExit:
    pass
heavy = ("mcp", "docker", "aiohttp", "uvloop", "apscheduler")
inner = ("ai_admin.queue.engine", "ai_admin.agent", "ai_admin.commands", "ai_admin.docker",
         "ai_admin.mcp", "ai_admin.http.app", "ai_admin.python_api")
loaded = sorted(m for m in sys.modules
                if m.split(".")[0] in heavy or any(m == i or m.startswith(i + ".") for i in inner))
print("LOADED " + json.dumps(loaded), file=sys.stderr)
"""


def test_help_and_client_commands_load_no_server_module(tmp_path: Path) -> None:
    """``--help`` and the client commands start without the MCP SDK, Docker, aiohttp or the
    queue engine: only ``serve``, ``mcp`` and ``tools`` load them, when they run."""
    agent = launch(tmp_path / "data")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AI_ADMIN_")},
        "AI_ADMIN_TOKEN": "op-token-for-tests",
    }
    url = ["--url", agent.url]
    try:
        submitted = subprocess.run(
            [
                _AI_ADMIN,
                "pull",
                "127.0.0.1:1/startup/none:1",
                "--retries",
                "0",
                "-o",
                "table",
                *url,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        task_id = submitted.stdout.strip()
        runs = {
            "help": ["--help"],
            "list": ["list", "--format", "json", *url],
            "status": ["status", task_id, *url],
            "status table": ["status", task_id, "--format", "table", *url],
            "queue": ["status", "--format", "csv", *url],
            "follow": ["status", task_id, "--follow", *url],
            "wait": ["pull", "127.0.0.1:1/startup/none:2", "--retries", "0", "--wait", *url],
            "monitor": ["monitor", "--once", *url],
            "settings": ["list"],  # no --url: the agent's settings are read
        }
        loaded = {}
        for name, args in runs.items():
            done = subprocess.run(
                [sys.executable, "-c", _LOADED_AFTER, *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            last = done.stderr.strip().splitlines()[-1]
            assert last.startswith("LOADED "), (name, done.stderr)
            loaded[name] = json.loads(last.removeprefix("LOADED "))
    finally:
        assert agent.stop() == 0
    assert submitted.returncode == 0, submitted.stderr
    assert loaded == {name: [] for name in runs}
