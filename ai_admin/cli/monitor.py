"""``ai-admin monitor``: a live full-screen view of the queue, redrawn every interval.

The counters (running, waiting, paused, completed, failed, merged, total), each named queue
with its limits, pause and counts (when there is more than ``default``), the running and
waiting tasks with their progress bars, bytes, rate and time left, and the most recent tasks.
``q`` or Ctrl-C quits. An agent that stops answering is shown as such and asked again at the
next refresh. Output that is not a terminal (or ``--once``) gets one frame.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from ai_admin.cli.agent_client import AgentClient
from ai_admin.cli.common import ConfigOpt, TokenOpt, UrlOpt, client, handled
from ai_admin.cli.exits import CliFailure, ExitCode
from ai_admin.cli.units import clock, progress_numbers
from ai_admin.cli.views import image_of, short_type

__all__ = ["monitor"]

_RECENT = 10
_ACTIVE = 20


def _snapshot(agent: AgentClient) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The agent's statistics with the live tasks of every queue, the queues, recent tasks."""
    queues = agent.command("queue_list", {}).get("queues", [])
    stats = agent.command("queue_status", {"detailed": True, "limit": _ACTIVE})
    tasks = stats.setdefault("tasks", {})
    for queue in queues[1:]:  # default's came with the statistics; a named queue's are asked
        if queue.get("running") or queue.get("waiting"):  # for only when it holds some
            params = {"detailed": True, "limit": _ACTIVE, "queue": queue["name"]}
            for status, more in agent.command("queue_status", params).get("tasks", {}).items():
                tasks.setdefault(status, []).extend(more)
    recent = agent.command("queue_list_tasks", {"limit": _RECENT})
    return stats, queues, recent


def _counters(stats: dict[str, Any]) -> Any:
    from rich.table import Table

    summary = stats.get("summary", {})
    by_status = stats.get("distributions", {}).get("status", {})
    tasks = stats.get("tasks", {})
    paused_queue = stats.get("queue", {}).get("paused")
    table = Table(box=None, pad_edge=False, header_style="bold")
    values = {
        "running": f"{summary.get('running', 0)}/{summary.get('max_concurrent', '?')}",
        "waiting": summary.get("queue_size", 0),
        "paused": len(tasks.get("paused", [])) if tasks else by_status.get("paused", 0),
        "completed": by_status.get("completed", 0),
        "failed": by_status.get("failed", 0) + by_status.get("timeout", 0),
        "cancelled": by_status.get("cancelled", 0),
        "merged": by_status.get("merged", 0),
        "total": summary.get("total_tasks", 0),
        "queue": "PAUSED" if paused_queue else "running",
    }
    for name in values:
        table.add_column(name.upper(), justify="right")
    table.add_row(*(str(v) for v in values.values()))
    return table


def _queues(queues: list[dict[str, Any]]) -> Any:
    """Each named queue: its tasks running against its limit, waiting, and its pause."""
    from rich.table import Table

    table = Table(title="queues", title_justify="left", header_style="bold")
    for name in ("queue", "running", "waiting", "state", "timeout", "retries"):
        table.add_column(name.upper(), justify="left" if name == "queue" else "right")
    for queue in queues:
        limits = queue.get("limits", {})
        table.add_row(
            str(queue.get("name")),
            f"{queue.get('running', 0)}/{limits.get('max_concurrent', '?')}",
            f"{queue.get('waiting', 0)}/{limits.get('max_queue_size', '?')}",
            "PAUSED" if queue.get("paused") else "running",
            f"{limits.get('default_timeout_s', 0):g}s",
            str(limits.get("max_retries", "")),
        )
    return table


def _active(stats: dict[str, Any], by_queue: bool) -> Any:
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    table = Table(title="active tasks", title_justify="left", expand=True, header_style="bold")
    columns = ("id", "type", *(("queue",) if by_queue else ()), "status", "progress", "%")
    for name in (*columns, "numbers", "step"):
        table.add_column(name.upper(), no_wrap=name in ("id", "progress"))
    tasks = stats.get("tasks", {})
    rows = [*tasks.get("running", []), *tasks.get("paused", []), *tasks.get("pending", [])]
    for task in rows[:_ACTIVE]:
        progress = float(task.get("progress") or 0)
        table.add_row(
            Text(str(task.get("id", ""))[:8]),
            Text(short_type(task.get("task_type"))),
            *((Text(str(task.get("queue", ""))),) if by_queue else ()),
            Text(str(task.get("status"))),
            ProgressBar(total=100, completed=progress, width=24),
            Text(f"{progress:.0f}%"),
            Text(progress_numbers(task.get("progress_detail"))),
            Text(str(task.get("current_step") or "")),
        )
    if not rows:
        table.add_row(Text("none"), *[Text("")] * (len(columns) + 1))
    return table


def _recent(recent: dict[str, Any]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="recent activity", title_justify="left", expand=True, header_style="bold")
    for name in ("created", "id", "type", "status", "image", "error"):
        table.add_column(name.upper(), no_wrap=True)
    for task in recent.get("tasks", []):
        table.add_row(
            Text(clock(task.get("created_at"))),
            Text(str(task.get("id", ""))[:8]),
            Text(short_type(task.get("task_type"))),
            Text(str(task.get("status"))),
            Text(image_of(task)),
            Text(str(task.get("error_code") or "")),
        )
    return table


def frame(agent: AgentClient) -> Any:
    """One screen: a header, then the counters, the named queues (if there are any besides
    ``default``), active tasks and recent activity (or why the agent did not answer)."""
    from rich.console import Group
    from rich.text import Text

    header = Text.assemble(
        ("ai-admin monitor", "bold"),
        f"  {agent.target.url}  {clock(time.time())}  ",
        ("q or Ctrl-C quits", "dim"),
    )
    try:
        stats, queues, recent = _snapshot(agent)
    except CliFailure as failure:
        if failure.exit_code is not ExitCode.UNREACHABLE:
            raise
        return Group(header, Text(f"{failure.code}: {failure.message}", style="red"))
    named = len(queues) > 1
    parts = [_counters(stats), *((_queues(queues),) if named else ()), _active(stats, named)]
    return Group(header, Text(""), *parts, _recent(recent))


@contextlib.contextmanager
def _keys() -> Iterator[Any]:
    """stdin in cbreak mode (keys arrive one by one, Ctrl-C still interrupts), restored at
    the end; None when stdin is not a terminal."""
    if not sys.stdin.isatty():
        yield None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _quit_within(fd: Any, seconds: float) -> bool:
    """Whether q was pressed within ``seconds``."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if fd is None:
            time.sleep(left)
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if ready and os.read(fd, 1) in (b"q", b"Q"):
            return True
    return False


def monitor(
    interval: Annotated[
        float, typer.Option("--interval", "-n", help="Seconds between refreshes.", min=0.2)
    ] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A live full-screen view of the queue; q or Ctrl-C quits.

    Queue counters, the named queues, active tasks with progress bars, bytes, rate and time
    left, and the most recent tasks, redrawn every --interval seconds."""
    from rich.console import Console
    from rich.live import Live

    with handled():
        agent = client(url, token, config)
        console = Console()
        if once or not sys.stdout.isatty():
            console.print(frame(agent))
            return
        try:
            with _keys() as fd, Live(console=console, screen=True, auto_refresh=False) as live:
                while True:
                    live.update(frame(agent), refresh=True)
                    if _quit_within(fd, interval):
                        break
        except KeyboardInterrupt:
            pass
