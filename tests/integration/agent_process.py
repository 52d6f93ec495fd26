"""A real agent for the HTTP tests: ``ai-admin serve`` in a subprocess, on a free local port.

The agent picks its own port (``--port 0``) and says which in its log, so no two tests race for
one. Its stdout and stderr go to files, so a test can read everything the agent printed (the
credential canary test greps them). ``stop()`` sends SIGTERM and waits for a clean exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
OPERATOR_TOKEN = "op-token-for-tests"
READ_ONLY_TOKEN = "ro-token"

_LISTENING = re.compile(r"listening on http://(?P<host>[^\s:]+|\[[^\]]+\]):(?P<port>\d+)")
# `ai-admin` is the console script `ai_admin.cli.main:app`; this runs it with this interpreter.
_COMMAND = [sys.executable, "-c", "from ai_admin.cli.main import app; app()"]
# Nothing leaks in from the shell: no proxies for local traffic, no AI_ADMIN_* settings.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def agent_env(
    token: str | None = OPERATOR_TOKEN,
    read_only: Sequence[str] = (READ_ONLY_TOKEN,),
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    # The test run's empty secrets directory stays (tests/conftest.py): nothing of the machine's.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AI_ADMIN_") or k == "AI_ADMIN_SECRETS_DIR"
    }
    if token is not None:
        env["AI_ADMIN_TOKEN"] = token
    if read_only:
        env["AI_ADMIN_READ_ONLY_TOKENS"] = json.dumps(list(read_only))
    env.update(extra or {})
    return env


@dataclass
class AgentProcess:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    stdout_path: Path
    stderr_path: Path
    token: str | None
    url: str = ""
    exit_code: int | None = field(default=None)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return self.stdout() + self.stderr()

    def wait_listening(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until the agent logs its address and ``/health`` answers; fails with its log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the agent exited with {self.proc.returncode} before listening:\n"
                    f"{self.output()[-4000:]}"
                )
            match = _LISTENING.search(self.stderr())
            if match and self._health_answers(f"http://{match['host']}:{match['port']}"):
                self.url = f"http://{match['host']}:{match['port']}"
                return
            time.sleep(0.05)  # polling the log with a deadline, not waiting for an outcome
        self.stop()
        raise AssertionError(f"the agent did not answer within {timeout_s:.0f} s:\n{self.output()}")

    @staticmethod
    def _health_answers(url: str) -> bool:
        try:
            with _NO_PROXY.open(f"{url}/health", timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_exit(self, timeout_s: float = START_TIMEOUT_S) -> int:
        self.exit_code = self.proc.wait(timeout=timeout_s)
        return self.exit_code

    def stop(self) -> int:
        """SIGTERM, then wait for the agent's own shutdown; SIGKILL only if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"the agent ignored SIGTERM:\n{self.output()[-4000:]}"
                ) from None
        self.exit_code = self.proc.returncode
        return self.exit_code


def launch(
    data_dir: Path,
    *,
    token: str | None = OPERATOR_TOKEN,
    read_only: Sequence[str] = (READ_ONLY_TOKEN,),
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    wait: bool = True,
    command: Sequence[str] = _COMMAND,
) -> AgentProcess:
    """Start ``ai-admin serve``; with ``wait``, return once it answers on ``.url``.

    ``command`` runs the CLI (a script that patches the agent first, for instance); ``args``
    follow ``serve``'s own. Each start writes its output to a directory of its own beside
    ``data_dir``, so an agent started again on the same data keeps the first one's log.
    Stop it with ``.stop()``; without ``wait``, see what it did with ``wait_exit()``.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir.parent / f"{data_dir.name}-logs-{uuid.uuid4().hex[:6]}"
    logs.mkdir()
    stdout_path, stderr_path = logs / "stdout.txt", logs / "stderr.txt"
    argv = [
        *command,
        "serve",
        "--host",
        host,
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        *args,
    ]
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=agent_env(token, read_only, env),
            cwd=data_dir,
        )
    agent = AgentProcess(proc, data_dir, stdout_path, stderr_path, token)
    if wait:
        try:
            agent.wait_listening()
        except BaseException:
            agent.stop()
            raise
    return agent


@contextlib.contextmanager
def serving(data_dir: Path, **options: Any) -> Iterator[AgentProcess]:
    """A running agent for a test module; on exit it must stop cleanly, with no traceback."""
    running = launch(data_dir, **options)
    yield running
    assert running.stop() == 0, running.stderr()[-3000:]
    assert "Traceback" not in running.stderr(), running.stderr()[-5000:]
