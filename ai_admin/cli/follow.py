"""Following a task to its end: ``--wait`` on a submit, ``status TASK_ID --follow``.

While the task runs, its progress goes to stderr (stdout keeps the data, so
``ai-admin pull IMAGE --wait > result.json`` works): a live rich bar with the bytes, rate,
time left and current step when stderr is a terminal, else a plain line per change. At the
end the task's status is printed in the command's format and the exit status says how it
ended: 0 completed, 1 (``TASK_FAILED``) failed, timed out or cancelled.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, Protocol

from ai_admin.cli.agent_client import AgentClient
from ai_admin.cli.event_stream import FINISHED, events
from ai_admin.cli.exits import CliFailure, ExitCode
from ai_admin.cli.output import Format, emit, print_failure
from ai_admin.cli.units import clock, progress_numbers
from ai_admin.cli.views import status_fields

__all__ = ["follow_task", "task_events"]


class _Display(Protocol):
    def update(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class _PlainLines:
    """A line per change of status, whole percent or step, for logs and CI."""

    def __init__(self) -> None:
        self._last: tuple[Any, ...] = ()

    def update(self, event: dict[str, Any]) -> None:
        key = (event.get("status"), int(event.get("progress") or 0), event.get("current_step"))
        if key == self._last:
            return
        self._last = key
        numbers = progress_numbers(event.get("progress_detail"))
        parts = [
            clock(event.get("at")),
            str(event.get("status")),
            f"{float(event.get('progress') or 0):.0f}%",
            str(event.get("current_step") or ""),
            numbers,
        ]
        print("  ".join(p for p in parts if p), file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _LiveBar:
    """A rich progress bar on stderr: status, bar, percent, bytes, rate, ETA, step."""

    def __init__(self, label: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self._progress = Progress(
            TextColumn("{task.fields[status]:<12}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[numbers]}"),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
        )
        self._progress.start()
        self._bar = self._progress.add_task(label, total=100, status="", numbers="")

    def update(self, event: dict[str, Any]) -> None:
        self._progress.update(
            self._bar,
            completed=float(event.get("progress") or 0),
            description=str(event.get("current_step") or ""),
            status=str(event.get("status") or ""),
            numbers=progress_numbers(event.get("progress_detail")),
        )

    def close(self) -> None:
        if self._progress.live.is_started:
            self._progress.stop()


def task_events(client: AgentClient, task_id: str) -> Iterator[dict[str, Any]]:
    """The task's state changes until it has finished (log lines left out)."""
    for event in events(client, task_id):
        if event.get("task_id") != task_id or event.get("event") == "log":
            continue
        yield event
        if event.get("status") in FINISHED:
            return


def follow_task(client: AgentClient, task_id: str, fmt: Format) -> ExitCode:
    """Show the task's progress until it ends, print its final status; its exit status."""
    while True:
        display: _Display = _LiveBar(task_id) if sys.stderr.isatty() else _PlainLines()
        try:
            for event in task_events(client, task_id):
                display.update(event)
        except KeyboardInterrupt:
            display.close()
            print(
                f"ai-admin: stopped following; task {task_id} goes on "
                f"(`ai-admin status {task_id} --follow`)",
                file=sys.stderr,
            )
            return ExitCode.INTERRUPTED
        finally:
            display.close()
        summary = client.command("queue_task_status", {"task_id": task_id})
        joined = summary.get("merged_into")
        if not joined or joined == task_id:
            return finish(summary, fmt)
        print(f"ai-admin: task {task_id} joined task {joined}; following it", file=sys.stderr)
        task_id = joined


def finish(summary: dict[str, Any], fmt: Format) -> ExitCode:
    """Print a finished task's status; 0 when it completed, else ``TASK_FAILED`` (the
    error's code, message and suggestions on stderr)."""
    emit(summary, fmt, status_fields(summary))
    status = (summary.get("status") or {}).get("value")
    if status == "completed":
        return ExitCode.OK
    error = summary.get("error") or {}
    print_failure(
        CliFailure(
            str(error.get("code") or f"TASK_{str(status).upper()}"),
            f"task {summary.get('task_id')} ended {status}: {error.get('message') or ''}".strip(),
            ExitCode.TASK_FAILED,
            error.get("suggestions") or [],
        )
    )
    return ExitCode.TASK_FAILED
