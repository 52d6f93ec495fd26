"""HTTP API under load: 100 concurrent clients against the agent, next to a bare aiohttp handler.

    .venv/bin/python bench/api_load.py                 # 20 s per run
    .venv/bin/python bench/api_load.py --seconds 10 --clients 100

Three servers, one after the other, each in its own process (so the clients' work does not count
in its memory) with the same aiohttp set-up (``AppRunner``, no access log, 127.0.0.1) and the
same event loop (uvloop, as ``ai-admin serve`` runs; ``--loop asyncio`` for asyncio's own). The
clients run on uvloop, to leave the servers as much of the machine as they can:

- ``bare``: one aiohttp handler that reads the JSON body and answers a small JSON dict;
- ``agent, 100,000 tasks``: the real app (``create_app``: auth, the error middleware, the
  dispatcher, validation) over a real SQLite store holding 100,000 finished tasks, written
  straight into the store beforehand;
- ``agent, 100 tasks``: the same with 100.

The clients, in this process, send ``POST /cmd`` with a mix of ``queue_task_status`` (a random
id among the stored tasks) and ``queue_status``; each client waits for its answer before sending
the next (closed loop). The table shows requests per second, p50/p99 latency, the ratio to the
bare handler, ``queue_status`` latency with 100 vs 100,000 tasks (under load, and one request at
a time), and the server's memory (VmRSS, and its peak VmHWM, from /proc/<pid>/status).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ai_admin.cli import loop

TOKEN = "bench-token"  # noqa: S105 - a throw-away token for a local benchmark
TASK_STATUS_SHARE = 0.8
_SEED_BATCH = 2_000


def task_id(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


# -- the store, seeded -------------------------------------------------------------------------


async def seed(db: Path, n: int) -> None:
    """``n`` completed pulls written straight into the store, with the counters to match."""
    from ai_admin.queue.models import DockerTask, TaskStatus, TaskType
    from ai_admin.queue.sqlite_store import SqliteStore

    store = SqliteStore(db)
    await store.open()
    now = time.time()
    counters = {"enqueued": n, "dequeued": n, "completed": n, "processing_s_total": 2.5 * n}
    for start in range(0, n, _SEED_BATCH):
        batch = []
        for i in range(start, min(n, start + _SEED_BATCH)):
            created = now - 2.0 * (n - i)
            batch.append(
                DockerTask(
                    id=task_id(i),
                    task_type=TaskType.PULL,
                    params={"image_name": f"registry:5000/team/app-{i % 50}", "tag": str(i)},
                    status=TaskStatus.COMPLETED,
                    progress=100.0,
                    current_step=TaskStatus.COMPLETED.description,
                    created_at=created,
                    queued_at=created,
                    started_at=created + 0.1,
                    completed_at=created + 2.6,
                    duration_s=2.5,
                    max_retries=3,
                    seq=i + 1,
                    result={"image_id": f"sha256:{i:064x}", "bytes_downloaded": 25_000_000},
                    logs=[f"Pulling from team/app-{i % 50}", f"Digest: sha256:{i:064x}"],
                )
            )
        await store.save(batch, counters)
    await store.close()


# -- the servers (child processes) -------------------------------------------------------------


async def _bare_cmd(request: web.Request) -> web.Response:
    message = json.loads(await request.read())
    return web.json_response({"success": True, "action": message.get("action"), "data": {}})


def _agent_app(data_dir: Path) -> tuple[web.Application, Any]:
    from ai_admin.agent import Agent
    from ai_admin.config import Settings
    from ai_admin.http.app import create_app
    from ai_admin.http.auth import Tokens
    from ai_admin.python_api import TaskQueue
    from ai_admin.queue.models import TaskType
    from ai_admin.queue.sqlite_store import SqliteStore

    async def never(ctx: Any) -> dict[str, Any]:  # nothing is submitted in this benchmark
        return {}

    settings = Settings(data_dir=data_dir, token=TOKEN, log_level="WARNING")
    queue = TaskQueue(
        store=SqliteStore(settings.db_path),
        executors=dict.fromkeys(TaskType, never),
        settings=settings,
    )
    agent = Agent(settings, queue=queue)
    return create_app(agent, Tokens(TOKEN)), agent


async def serve(kind: str, data_dir: Path) -> None:
    from ai_admin.agent import settle_heap
    from ai_admin.logging import setup_logging

    setup_logging("WARNING")
    agent = None
    if kind == "bare":
        app = web.Application()
        app.router.add_post("/cmd", _bare_cmd)
    else:
        app, agent = _agent_app(data_dir)
        await agent.queue.start()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    settle_heap()  # as ai-admin serve does
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"LISTENING {port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    if agent is not None:
        await agent.stop()


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str

    def cpu_s(self) -> float:
        """User plus system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(kind: str, data_dir: Path, event_loop: str) -> Server:
    command = [sys.executable, __file__, "--serve", kind, "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        [*command, "--loop", event_loop],
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AI_ADMIN_")},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("LISTENING "):
        proc.kill()
        raise RuntimeError(f"the {kind} server did not start: {line!r}")
    return Server(proc, f"http://127.0.0.1:{int(line.split()[1])}")


# -- the clients -------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int = 0
    seconds: float = 0.0
    latencies_s: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    memory: dict[str, float] = field(default_factory=dict)
    unloaded_status_ms: float = 0.0
    server_cpu_s: float = 0.0

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.server_cpu_s / self.requests if self.requests else float("nan")

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float, action: str | None = None) -> float:
        values = (
            self.latencies_s.get(action, [])
            if action
            else [v for vs in self.latencies_s.values() for v in vs]
        )
        if not values:
            return float("nan")
        ordered = sorted(values)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _message(rng: random.Random, n_tasks: int) -> tuple[str, bytes]:
    if rng.random() < TASK_STATUS_SHARE:
        params = {"task_id": task_id(rng.randrange(n_tasks))}
        return "queue_task_status", json.dumps(
            {"action": "queue_task_status", "params": params}
        ).encode()
    return "queue_status", b'{"action": "queue_status", "params": {}}'


async def _client(
    url: str, n_tasks: int, seed_value: int, until: float, measure_from: float, result: Result
) -> None:
    rng = random.Random(seed_value)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
        while (now := time.perf_counter()) < until:
            action, body = _message(rng, n_tasks)
            async with http.post(f"{url}/cmd", data=body, headers=headers) as response:
                answer = await response.read()
            done = time.perf_counter()
            if done < measure_from:
                continue  # warm-up
            if response.status != 200 or b'"success": true' not in answer:
                result.errors += 1
            result.requests += 1
            result.latencies_s.setdefault(action, []).append(done - now)


async def load(server: Server, name: str, n_tasks: int, clients: int, seconds: float) -> Result:
    result = Result(name)
    warm_up = 1.0
    start = time.perf_counter()
    measure_from, until = start + warm_up, start + warm_up + seconds

    async def cpu_during_measurement() -> None:
        await asyncio.sleep(warm_up)
        before = server.cpu_s()
        await asyncio.sleep(seconds)
        result.server_cpu_s = server.cpu_s() - before

    await asyncio.gather(
        cpu_during_measurement(),
        *(_client(server.url, n_tasks, i, until, measure_from, result) for i in range(clients)),
    )
    result.seconds = seconds
    return result


async def unloaded_status_ms(url: str, count: int = 200) -> float:
    """Median of ``queue_status`` sent one at a time."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    body = b'{"action": "queue_status", "params": {}}'
    times = []
    async with aiohttp.ClientSession(trust_env=False) as http:
        for _ in range(count):
            t0 = time.perf_counter()
            async with http.post(f"{url}/cmd", data=body, headers=headers) as response:
                await response.read()
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def run(kind: str, name: str, data_dir: Path, n_tasks: int, args: argparse.Namespace) -> Result:
    server = start_server(kind, data_dir, args.loop)
    try:
        unloaded = loop.run(unloaded_status_ms(server.url)) if kind == "agent" else 0.0
        result = loop.run(load(server, name, max(n_tasks, 1), args.clients, args.seconds))
        result.unloaded_status_ms = unloaded
        result.memory = server.memory_mb()
    finally:
        server.stop()
    return result


def report(results: list[Result], clients: int, seconds: float, event_loop: str) -> None:
    bare = results[0]
    print(
        f"\n{clients} concurrent clients, {seconds:g} s per run, closed loop, POST /cmd, "
        f"servers on {event_loop}"
    )
    print(
        f"mix: {TASK_STATUS_SHARE:.0%} queue_task_status (random stored id), "
        f"{1 - TASK_STATUS_SHARE:.0%} queue_status\n"
    )
    header = (
        f"| {'server':<22} | {'req/s':>7} | {'p50 ms':>6} | {'p99 ms':>6} | {'vs bare':>7} "
        f"| {'server CPU us/req':>17} | {'errors':>6} | {'RSS MB':>6} | {'peak MB':>7} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for r in results:
        ratio = f"{r.rate / bare.rate:.0%}" if bare.rate else "-"
        print(
            f"| {r.name:<22} | {r.rate:>7.0f} | {r.percentile_ms(0.5):>6.1f} "
            f"| {r.percentile_ms(0.99):>6.1f} | {ratio:>7} | {r.cpu_us_per_request:>17.0f} "
            f"| {r.errors:>6} "
            f"| {r.memory.get('VmRSS', 0):>6.1f} | {r.memory.get('VmHWM', 0):>7.1f} |"
        )
    print("\nqueue_status latency, ms:")
    print(f"| {'server':<22} | {'p50 load':>8} | {'p99 load':>8} | {'p50 alone':>9} |")
    print(f"|{'-' * 24}|{'-' * 10}|{'-' * 10}|{'-' * 11}|")
    for r in results[1:]:
        print(
            f"| {r.name:<22} | {r.percentile_ms(0.5, 'queue_status'):>8.1f} "
            f"| {r.percentile_ms(0.99, 'queue_status'):>8.1f} | {r.unloaded_status_ms:>9.2f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks in the large store")
    parser.add_argument("--small", type=int, default=100, help="tasks in the small store")
    parser.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="the servers' event loop: uvloop as ai-admin serve runs, or asyncio's own",
    )
    parser.add_argument("--serve", choices=["bare", "agent"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        (loop.run if args.loop == "uvloop" else asyncio.run)(serve(args.serve, args.data_dir))
        return 0
    with tempfile.TemporaryDirectory(prefix="ai-admin-bench-") as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        t0 = time.perf_counter()
        asyncio.run(seed(big / "ai-admin.db", args.tasks))
        asyncio.run(seed(small / "ai-admin.db", args.small))
        print(f"seeded {args.tasks:,} + {args.small:,} tasks in {time.perf_counter() - t0:.1f} s")
        results = [
            run("bare", "bare aiohttp handler", Path(tmp), 0, args),
            run("agent", f"agent, {args.tasks:,} tasks", big, args.tasks, args),
            run("agent", f"agent, {args.small:,} tasks", small, args.small, args),
        ]
    report(results, args.clients, args.seconds, args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
