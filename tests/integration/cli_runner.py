"""The installed ``ai-admin`` command run as a user runs it, against a live agent, and tmux for
the commands that need a terminal.

``Cli.run`` starts the console script pip installed next to this interpreter, with a clean
environment (no ``AI_ADMIN_*`` but the test run's empty secrets directory) and the operator
token in ``AI_ADMIN_TOKEN``; ``--url`` names the agent. ``Tmux`` drives a tmux server of the
test's own (its own socket), whose screen is read back with ``capture-pane``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_process import OPERATOR_TOKEN, agent_env

AI_ADMIN = str(Path(sys.executable).with_name("ai-admin"))
RUN_TIMEOUT_S = 180.0


@dataclass
class Cli:
    url: str
    token: str | None = OPERATOR_TOKEN

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = agent_env(token=self.token, read_only=())
        env.update(extra or {})
        return env

    def argv(self, *args: str, url: str | None = None) -> list[str]:
        return [AI_ADMIN, *args, "--url", url or self.url]

    def run(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        url: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args, url=url),
            input=input if input is not None else "",
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )

    def json(self, *args: str) -> Any:
        """The command's JSON output; it must succeed."""
        done = self.run(*args, "--format", "json")
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return json.loads(done.stdout)

    def submit(self, *args: str) -> str:
        """A submit's task id (the command's table form prints just the id)."""
        done = self.run(*args, "--format", "table")
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout.strip()

    def status(self, task_id: str) -> str:
        return str(self.json("status", task_id)["status"]["value"])


def tmux_binary() -> str:
    """``tmux``, installed from Debian's package when it is missing (as root on Debian)."""
    found = shutil.which("tmux")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("tmux is missing: install it (apt-get install -y tmux)", pytrace=False)
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=180"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*apt, "install", "-y", "--no-install-recommends", "tmux"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:  # the package lists may be missing or stale
        subprocess.run([*apt, "update"], capture_output=True, env=env, check=False)
        done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    found = shutil.which("tmux")
    if found is None:
        pytest.fail(f"installing tmux gave no tmux:\n{done.stderr[-2000:]}", pytrace=False)
    return found


class Tmux:
    """A tmux server on a socket of its own, with one window per ``start``."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.socket = f"ai-admin-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def _tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def start(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        """Run ``argv`` in a 160x45 terminal; when it ends the window says ``EXIT=<status>``
        and stays open to be read."""
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = f"env -i {exports} {shlex.join(argv)}; echo EXIT=$?; sleep 600"
        done = self._tmux(
            "new-session", "-d", "-s", name, "-x", "160", "-y", "45", "bash", "-c", command
        )
        assert done.returncode == 0, done.stderr

    def screen(self, name: str, *, escapes: bool = False) -> str:
        """The window's text (``escapes``: with its colours as escape sequences)."""
        return self._tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", name).stdout

    def keys(self, name: str, *keys: str) -> None:
        assert self._tmux("send-keys", "-t", name, *keys).returncode == 0

    def wait_for(self, name: str, seen: Callable[[str], bool], timeout_s: float = 60) -> str:
        """The screen once ``seen(screen)`` holds; fails with the last screen otherwise."""
        deadline = time.monotonic() + timeout_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen(name)
            if seen(screen):
                return screen
            time.sleep(0.2)  # polling a screen with a deadline, not waiting for an outcome
        raise AssertionError(f"the screen never showed what was expected:\n{screen}")

    def close(self) -> None:
        self._tmux("kill-server")
