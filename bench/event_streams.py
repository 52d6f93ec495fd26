"""Greedy and slow clients against a real agent: submits under 1,000 open event streams, and
``/health`` under 300 idle sockets with 256 file descriptors.

    .venv/bin/python bench/event_streams.py                  # 5 rounds of 200 submits each
    .venv/bin/python bench/event_streams.py --rounds 7 --submits 300 --streams 1000

Each agent is ``ai-admin serve`` in its own process, as an operator runs it (uvloop), with
``DOCKER_HOST`` pointing at a socket where nothing listens: every submitted pull is taken,
runs and fails at once, so each submit makes the agent publish its events (pending, running,
failed) to every open stream.

1. Submit latency. One client sends ``POST /api/tasks`` one at a time on a kept-alive
   connection (closed loop) and times each answer. Rounds alternate: no streams open, then
   ``--streams`` open ``GET /api/events`` streams (all tasks), held by a separate process that
   reads and discards everything, so its work does not count in this one's. The table shows
   the median of the rounds' medians, the p90, and the ratio to the no-stream rounds measured
   in the same run. Target: at most 3x.
2. Idle sockets. An agent started with RLIMIT_NOFILE 256 (soft and hard) and the default
   request-head timeout (10 s) is handed 300 connections that send nothing; the time until a
   fresh ``GET /health`` is answered. Target: within 15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ai_admin.cli import loop

TOKEN = "bench-token"  # noqa: S105 - a throw-away token for a local benchmark
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
_CLI = "from ai_admin.cli.main import app; app()"
_FD_LIMIT = 256


# -- the agent (a child process) ---------------------------------------------------------------


@dataclass
class Agent:
    proc: subprocess.Popen[bytes]
    port: int
    stderr: Path

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _lower_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_FD_LIMIT, _FD_LIMIT))


def start_agent(tmp: Path, name: str, env: dict[str, str], *, fd_limited: bool = False) -> Agent:
    data = tmp / name
    data.mkdir()
    stderr = tmp / f"{name}.log"
    base = {k: v for k, v in os.environ.items() if not k.startswith("AI_ADMIN_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CLI, "serve", "--port", "0", "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("wb"),
        env={**base, "AI_ADMIN_TOKEN": TOKEN, **env},
        preexec_fn=_lower_fd_limit if fd_limited else None,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = _LISTENING.search(stderr.read_text(errors="replace"))
        if match:
            return Agent(proc, int(match[1]), stderr)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the agent did not start:\n{stderr.read_text(errors='replace')[-3000:]}")


# -- the stream holders (a child process) ------------------------------------------------------


def hold_streams(port: int, count: int) -> None:
    """Open ``count`` event streams, say READY once all are answered, then read and discard
    until stdin closes; print the bytes received."""
    request = (
        f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n"
    ).encode()
    selector = selectors.DefaultSelector()
    waiting: set[socket.socket] = set()
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(request)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        waiting.add(sock)
    selector.register(sys.stdin, selectors.EVENT_READ)
    received = 0
    while True:
        for key, _ in selector.select():
            if key.fileobj is sys.stdin:
                print(f"BYTES {received}", flush=True)
                return
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            data = sock.recv(1 << 16)
            if not data:
                raise SystemExit("a stream ended early")
            if sock in waiting:
                if not data.startswith(b"HTTP/1.1 200"):
                    raise SystemExit(f"a stream was refused: {data[:300]!r}")
                waiting.discard(sock)
                if not waiting:
                    print("READY", flush=True)
            received += len(data)


class Holders:
    def __init__(self, port: int, count: int) -> None:
        command = [sys.executable, __file__, "--hold", str(port), "--streams", str(count)]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "READY":
            self.proc.kill()
            raise RuntimeError(f"the streams did not open: {line!r}")

    def close(self) -> int:
        """Close the streams; the bytes they received."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        line = self.proc.stdout.readline()
        self.proc.wait(timeout=60)
        return int(line.split()[1]) if line.startswith("BYTES ") else -1


# -- 1. submit latency -------------------------------------------------------------------------


async def submits(port: int, count: int) -> list[float]:
    """Seconds per ``POST /api/tasks``, one at a time on one kept-alive connection."""
    url = f"http://127.0.0.1:{port}/api/tasks"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    times: list[float] = []
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
        for i in range(count + 20):  # 20 to warm up
            params = {"image_name": "nothing/listens", "tag": uuid.uuid4().hex, "max_retries": 0}
            body = json.dumps({"task_type": "docker_pull", "params": params})
            t0 = time.perf_counter()
            async with http.post(url, data=body, headers=headers) as response:
                answer = await response.read()
            elapsed = time.perf_counter() - t0
            if response.status != 200:
                raise RuntimeError(f"submit answered {response.status}: {answer[:300]!r}")
            if i >= 20:
                times.append(elapsed)
    return times


@dataclass
class Condition:
    name: str
    round_medians_ms: list[float]
    all_ms: list[float]
    stream_bytes: int = 0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.round_medians_ms)

    @property
    def p90_ms(self) -> float:
        ordered = sorted(self.all_ms)
        return ordered[int(0.9 * (len(ordered) - 1))]


def submit_latency(tmp: Path, args: argparse.Namespace) -> tuple[Condition, Condition]:
    nothing = tmp / "nothing-listens.sock"
    env = {
        "DOCKER_HOST": f"unix://{nothing}",
        "AI_ADMIN_MAX_EVENT_STREAMS_PER_TOKEN": str(args.streams + 10),
        "AI_ADMIN_MAX_CONNECTIONS": str(args.streams + 100),
        "AI_ADMIN_MAX_QUEUE_SIZE": str(10 * args.rounds * (args.submits + 20) + 1000),
    }
    agent = start_agent(tmp, "streams", env)
    none = Condition("no event streams", [], [])
    many = Condition(f"{args.streams:,} event streams", [], [])
    try:
        for _ in range(args.rounds):
            times = loop.run(submits(agent.port, args.submits))
            none.round_medians_ms.append(1000 * statistics.median(times))
            none.all_ms += [1000 * t for t in times]
            holders = Holders(agent.port, args.streams)
            try:
                times = loop.run(submits(agent.port, args.submits))
            finally:
                many.stream_bytes += holders.close()
            many.round_medians_ms.append(1000 * statistics.median(times))
            many.all_ms += [1000 * t for t in times]
    finally:
        agent.stop()
    return none, many


# -- 2. idle sockets against 256 descriptors ---------------------------------------------------


def health_after_idle_sockets(tmp: Path, n: int, idle: int) -> float:
    """Seconds from holding ``idle`` silent connections until ``/health`` answers."""
    agent = start_agent(tmp, f"fd-limited-{n}", {}, fd_limited=True)
    sockets: list[socket.socket] = []
    try:
        sockets = [socket.create_connection(("127.0.0.1", agent.port)) for _ in range(idle)]
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", agent.port), timeout=60) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            status = sock.makefile("rb").readline()
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"/health answered {status!r}")
        return time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
        agent.stop()


# -- the report --------------------------------------------------------------------------------


def report(
    none: Condition, many: Condition, health_s: list[float], args: argparse.Namespace
) -> None:
    print(
        f"\nsubmit latency (POST /api/tasks, one at a time, {args.submits} per round, "
        f"{args.rounds} rounds per condition, alternating; agent on uvloop)\n"
    )
    header = (
        f"| {'condition':<22} | {'median of round medians ms':>26} | {'p90 ms':>6} "
        f"| {'vs none':>7} | {'round medians ms':<40} |"
    )
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for c in (none, many):
        rounds = ", ".join(f"{m:.2f}" for m in c.round_medians_ms)
        print(
            f"| {c.name:<22} | {c.median_ms:>26.2f} | {c.p90_ms:>6.2f} "
            f"| {c.median_ms / none.median_ms:>6.2f}x | {rounds:<40} |"
        )
    print(
        f"\n{many.stream_bytes / 1e6:.1f} MB of events reached the {args.streams:,} streams "
        f"(target: the ratio at most 3x)"
    )
    print(
        f"\n{args.idle} idle sockets against an agent limited to {_FD_LIMIT} file descriptors "
        "(request_head_timeout_s 10):"
    )
    print(f"| {'round':>5} | {'/health answered after s':>24} |")
    print(f"|{'-' * 7}|{'-' * 26}|")
    for i, seconds in enumerate(health_s, 1):
        print(f"| {i:>5} | {seconds:>24.2f} |")
    print("(target: within 15 s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--submits", type=int, default=200, help="measured submits per round")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=300, help="idle sockets in part 2")
    parser.add_argument("--idle-rounds", type=int, default=3)
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold:
        hold_streams(args.hold, args.streams)
        return 0
    with tempfile.TemporaryDirectory(prefix="ai-admin-bench-") as tmp_name:
        tmp = Path(tmp_name)
        none, many = submit_latency(tmp, args)
        health_s = [health_after_idle_sockets(tmp, n, args.idle) for n in range(args.idle_rounds)]
    report(none, many, health_s, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
