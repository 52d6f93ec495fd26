"""Start-up and answer time of the ``ai-admin`` client commands, next to ``curl`` sending the
same requests in the same run.

    .venv/bin/python bench/cli_latency.py              # 20 runs of each
    .venv/bin/python bench/cli_latency.py --runs 50

An agent is started (``ai-admin serve`` in its own process, as an operator runs it) with
``DOCKER_HOST`` pointing at a socket where nothing listens, and 50 pulls are submitted, which
fail at once: ``list`` has a page of tasks to answer and ``status`` a task with an error.
Then, round after round (so that a busy moment of the machine touches every command alike),
each command runs as a new process, timed from start to exit (wall time):

- ``ai-admin --help`` (no request; the interpreter alone, ``python -c pass``, for scale);
- ``ai-admin list --format json`` and ``ai-admin status TASK_ID``, given ``--url`` and the
  token in ``AI_ADMIN_TOKEN`` (the agent's settings are not read), next to ``curl`` sending
  the same ``POST /cmd`` (the same body, the same token);
- ``ai-admin list --format json`` with the address from the agent's settings
  (``AI_ADMIN_PORT``), which reads them as ``ai-admin serve`` does.

The table shows the median of the runs for each, and the difference to curl. Target: every
client command under 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

TOKEN = "bench-token"  # noqa: S105 - a throw-away token for a local benchmark
AI_ADMIN = str(Path(sys.executable).with_name("ai-admin"))
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
_TASKS = 50
TARGET_MS = 300.0


@dataclass
class Agent:
    proc: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def clean_env(**extra: str) -> dict[str, str]:
    """No ``AI_ADMIN_*`` from the shell, and bytecode written as on a user's machine (the
    first, uncounted run of each command compiles what it imports once)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AI_ADMIN_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    return {**env, **extra}


def start_agent(tmp: Path) -> Agent:
    log = tmp / "agent.log"
    env = clean_env(
        AI_ADMIN_TOKEN=TOKEN,
        DOCKER_HOST=f"unix://{tmp / 'no-engine.sock'}",
        XDG_CONFIG_HOME=str(tmp / "xdg"),
        AI_ADMIN_SECRETS_DIR=str(tmp / "secrets"),
    )
    (tmp / "secrets").mkdir()
    proc = subprocess.Popen(
        [AI_ADMIN, "serve", "--port", "0", "--data-dir", str(tmp / "data")],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = _LISTENING.search(log.read_text(errors="replace"))
        if match:
            return Agent(proc, f"http://127.0.0.1:{match[1]}")
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the agent did not start:\n{log.read_text(errors='replace')[-3000:]}")


def send(url: str, message: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(  # noqa: S310 - a local http:// URL
        f"{url}/cmd",
        data=json.dumps(message).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as answer:
        envelope: dict[str, object] = json.loads(answer.read())
    return envelope


@dataclass
class Case:
    name: str
    argv: list[str]
    env: dict[str, str]
    times_ms: list[float] = field(default_factory=list)

    def run(self) -> None:
        started = time.perf_counter()
        done = subprocess.run(self.argv, env=self.env, capture_output=True, check=False)
        self.times_ms.append(1000 * (time.perf_counter() - started))
        if done.returncode != 0:
            raise RuntimeError(f"{self.name} failed: {done.stderr.decode()[-2000:]}")

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)


def curl(url: str, message: dict[str, object], env: dict[str, str]) -> list[str]:
    return [
        "curl",
        "-sSf",
        "-o",
        "/dev/null",
        "--noproxy",
        "*",
        "-H",
        f"Authorization: Bearer {TOKEN}",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps(message),
        f"{url}/cmd",
    ]


def cases(agent: Agent, task_id: str, tmp: Path) -> list[tuple[Case, Case | None]]:
    """(ai-admin, curl sending the same request) for each row of the table."""
    env = clean_env(
        AI_ADMIN_TOKEN=TOKEN,
        XDG_CONFIG_HOME=str(tmp / "xdg"),
        AI_ADMIN_SECRETS_DIR=str(tmp / "secrets"),
    )
    url = ["--url", agent.url]
    port = agent.url.rpartition(":")[2]
    listing = {"action": "queue_list_tasks", "params": {"limit": 50, "offset": 0}}
    status = {"action": "queue_task_status", "params": {"task_id": task_id, "include_logs": False}}
    return [
        (Case("python -c pass (the interpreter alone)", [sys.executable, "-c", "pass"], env), None),
        (Case("ai-admin --help", [AI_ADMIN, "--help"], env), None),
        (
            Case("ai-admin list --format json", [AI_ADMIN, "list", "--format", "json", *url], env),
            Case("curl: the same request", curl(agent.url, listing, env), env),
        ),
        (
            Case("ai-admin status TASK_ID", [AI_ADMIN, "status", task_id, *url], env),
            Case("curl: the same request", curl(agent.url, status, env), env),
        ),
        (
            Case(
                "ai-admin list --format json (address from the settings)",
                [AI_ADMIN, "list", "--format", "json"],
                {**env, "AI_ADMIN_PORT": port},
            ),
            Case("curl: the same request", curl(agent.url, listing, env), env),
        ),
    ]


def print_table(rows: Sequence[tuple[Case, Case | None]], runs: int) -> None:
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(
        f"\nWall time per command, median of {runs} runs (ms); target under {TARGET_MS:.0f}; "
        f"{os.cpu_count()} CPUs, load average {load}\n"
    )
    header = (
        f"| {'command':<56} | {'ai-admin':>8} | {'curl':>6} | {'difference':>10} | "
        f"{'under target':>12} |"
    )
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for cli, reference in rows:
        ref = f"{reference.median_ms:6.1f}" if reference else f"{'-':>6}"
        diff = f"{cli.median_ms - reference.median_ms:10.1f}" if reference else f"{'-':>10}"
        under = (
            "-" if cli.argv[0] == sys.executable else ("yes" if cli.median_ms < TARGET_MS else "no")
        )
        print(f"| {cli.name:<56} | {cli.median_ms:8.1f} | {ref} | {diff} | {under:>12} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="runs of each command")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        print("curl is needed for the reference (apt-get install -y curl)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ai-admin-cli-bench-") as name:
        tmp = Path(name)
        agent = start_agent(tmp)
        try:
            task_id = ""
            for n in range(_TASKS):
                answer = send(
                    agent.url,
                    {
                        "action": "docker_pull",
                        "params": {"image_name": "bench/app", "tag": f"t{n}"},
                    },
                )
                data = answer["data"]
                assert isinstance(data, dict)
                task_id = str(data["task_id"])
            rows = cases(agent, task_id, tmp)
            for case in [c for pair in rows for c in pair if c is not None]:
                case.run()  # a first run of each, not counted: files in the page cache
                case.times_ms.clear()
            for _ in range(args.runs):
                for cli, reference in rows:
                    cli.run()
                    if reference is not None:
                        reference.run()
        finally:
            agent.stop()
    print_table(rows, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
