"""``queue pause|resume|clear|list|configure``, ``metrics``, ``export``, ``config show`` and
``send``: the client commands about the whole queue and the agent."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ai_admin.cli.agent_client import AgentClient
from ai_admin.cli.common import (
    ConfigOpt,
    FormatOpt,
    TokenOpt,
    UrlOpt,
    YesOpt,
    client,
    confirm,
    exit_with,
    handled,
)
from ai_admin.cli.exits import CliFailure, ExitCode
from ai_admin.cli.output import Fields, choose, emit, generic_view
from ai_admin.cli.target import resolve

__all__ = ["config_app", "queue_app", "register"]

QueueName = Annotated[
    str | None,
    typer.Option(
        "--queue", help="A named queue (default: the agent's default queue).", show_default=False
    ),
]
queue_app = typer.Typer(
    rich_markup_mode=None,
    help="Pause, resume, clear, list, configure, create or delete queues.",
    no_args_is_help=True,
    epilog="Example: ai-admin queue configure --max-concurrent 2",
)


def _named(queue: str | None) -> dict[str, Any]:
    """``queue`` only when given: an agent without named queues refuses it in its own words."""
    return {} if queue is None else {"queue": queue}


@queue_app.command("pause", epilog="Example: ai-admin queue pause")
def queue_pause(
    queue: QueueName = None,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Pause the queue: running tasks finish, nothing new starts (kept across restarts)."""
    with handled():
        emit(client(url, token, config).command("queue_pause", _named(queue)), choose(fmt))


@queue_app.command("resume", epilog="Example: ai-admin queue resume")
def queue_resume(
    queue: QueueName = None,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Resume a paused queue: waiting tasks start again."""
    with handled():
        emit(client(url, token, config).command("queue_resume", _named(queue)), choose(fmt))


@queue_app.command("clear", epilog="Example: ai-admin queue clear --include-failed --yes")
def queue_clear(
    include_failed: Annotated[
        bool, typer.Option(help="Also delete failed, cancelled and timed-out tasks.")
    ] = False,
    queue: QueueName = None,
    yes: YesOpt = False,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Delete finished tasks from the history (never waiting or running ones); asks first
    unless --yes."""
    what = (
        "completed, merged, failed, cancelled and timed-out"
        if include_failed
        else ("completed and merged")
    )
    confirm(f"Delete every {what} task from the history?", yes)
    params = {"include_failed": include_failed, **_named(queue)}
    with handled():
        emit(client(url, token, config).command("queue_clear", params), choose(fmt))


@queue_app.command("list", epilog="Example: ai-admin queue list --format json")
def queue_list(
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The queues with their settings, pause state and counts (an agent without named
    queues shows its one queue)."""
    with handled():
        agent = client(url, token, config)
        data = _queues(agent)
        emit(data, choose(fmt), generic_view(data, "queues"))


def _queues(agent: AgentClient) -> Any:
    try:
        return agent.command("queue_list", {})
    except CliFailure as failure:
        if failure.exit_code is not ExitCode.UNSUPPORTED:
            raise
    status = agent.command("queue_status", {})
    settings = agent.command("queue_configure", {})["settings"]
    summary, queue = status.get("summary", {}), status.get("queue", {})
    return {
        "queues": [
            {
                "name": "default",
                "paused": queue.get("paused"),
                "running": summary.get("running"),
                "waiting": summary.get("queue_size"),
                **settings,
            }
        ]
    }


_SETTINGS = (
    "max_concurrent",
    "max_queue_size",
    "default_timeout_s",
    "max_retries",
    "retry_base_s",
    "retry_factor",
    "retry_cap_s",
    "retry_jitter",
)


@queue_app.command("configure", epilog="Example: ai-admin queue configure --max-concurrent 2")
def queue_configure(
    max_concurrent: Annotated[int | None, typer.Option(help="Tasks run at once.")] = None,
    max_queue_size: Annotated[int | None, typer.Option(help="Waiting tasks at most.")] = None,
    default_timeout_s: Annotated[float | None, typer.Option(help="A task's timeout.")] = None,
    max_retries: Annotated[int | None, typer.Option(help="Automatic retries.")] = None,
    retry_base_s: Annotated[float | None, typer.Option(help="First retry's delay.")] = None,
    retry_factor: Annotated[float | None, typer.Option(help="Backoff factor.")] = None,
    retry_cap_s: Annotated[float | None, typer.Option(help="Longest retry delay.")] = None,
    retry_jitter: Annotated[float | None, typer.Option(help="Random part, 0 to 1.")] = None,
    queue: QueueName = None,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show the queue's run-time settings, or change some (until the agent restarts)."""
    given = dict(
        zip(
            _SETTINGS,
            (
                max_concurrent,
                max_queue_size,
                default_timeout_s,
                max_retries,
                retry_base_s,
                retry_factor,
                retry_cap_s,
                retry_jitter,
            ),
            strict=True,
        )
    )
    params = {k: v for k, v in given.items() if v is not None} | _named(queue)
    with handled():
        data = client(url, token, config).command("queue_configure", params)
        emit(data, choose(fmt), Fields(data.get("settings", data), "settings"))


QueueArg = Annotated[str, typer.Argument(help="The queue's name.")]


@queue_app.command("create", epilog="Example: ai-admin queue create nightly --max-concurrent 1")
def queue_create(
    name: QueueArg,
    max_concurrent: Annotated[int | None, typer.Option(help="Tasks run at once.")] = None,
    max_queue_size: Annotated[int | None, typer.Option(help="Waiting tasks at most.")] = None,
    default_timeout_s: Annotated[float | None, typer.Option(help="A task's timeout.")] = None,
    max_retries: Annotated[int | None, typer.Option(help="Automatic retries.")] = None,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a named queue with its own settings (agents with named queues)."""
    given = {
        "max_concurrent": max_concurrent,
        "max_queue_size": max_queue_size,
        "default_timeout_s": default_timeout_s,
        "max_retries": max_retries,
    }
    params = {"name": name, **{k: v for k, v in given.items() if v is not None}}
    with handled():
        emit(client(url, token, config).command("queue_create", params), choose(fmt))


@queue_app.command("delete", epilog="Example: ai-admin queue delete nightly --yes")
def queue_delete(
    name: QueueArg,
    yes: YesOpt = False,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Delete an empty named queue; asks first unless --yes."""
    confirm(f"Delete queue {name}?", yes)
    with handled():
        emit(client(url, token, config).command("queue_delete", {"queue": name}), choose(fmt))


def metrics(
    historical: Annotated[
        bool, typer.Option(help="Trends per hour and day (agents that keep them).")
    ] = False,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The queue's counters: enqueued, completed, failed, retried, average wait and run time."""
    params = {"historical": True} if historical else {}
    with handled():
        data = client(url, token, config).command("queue_metrics", params)
        emit(data, choose(fmt), Fields(data, "metrics"))


_PAGE = 1000


def export(
    what: Annotated[str, typer.Option(help="jobs, metrics, config or all.")] = "all",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the export here (default: stdout).")
    ] = None,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Export jobs (every one, page by page), metrics and configuration as one JSON document.

    With --output, prints what was written (in --format)."""
    with handled():
        if what not in ("jobs", "metrics", "config", "all"):
            raise CliFailure(
                "CLIENT_BAD_PARAM",
                f"--what {what!r} is none of jobs, metrics, config, all.",
                ExitCode.USAGE,
            )
        document = _export(client(url, token, config), what)
        text = json.dumps(document, indent=2, default=str) + "\n"
        if output is None:
            sys.stdout.write(text)
            return
        output.write_text(text)
        written = {
            "output": str(output),
            "what": what,
            "jobs": len(document.get("jobs", [])),
            "bytes": len(text.encode()),
        }
        emit(written, choose(fmt), Fields(written, "export"))


def _export(agent: AgentClient, what: str) -> dict[str, Any]:
    """The whole export: jobs read in pages until the agent has no more."""
    document: dict[str, Any] = agent.command("queue_export", {"what": what, "limit": _PAGE})
    if what not in ("jobs", "all"):
        return document
    jobs = document.get("jobs", [])
    offset = len(jobs)
    while offset < int(document.get("total_jobs") or 0):
        page = agent.command("queue_export", {"what": "jobs", "limit": _PAGE, "offset": offset})
        if not page.get("jobs"):
            break
        jobs += page["jobs"]
        offset = int(page.get("next_offset") or offset + len(page["jobs"]))
    document.update(jobs=jobs)
    for key in ("truncated", "next_offset", "note"):
        document.pop(key, None)
    return document


config_app = typer.Typer(
    rich_markup_mode=None,
    help="The agent's configuration, and where this client finds the agent.",
    no_args_is_help=True,
    epilog="Example: ai-admin config show",
)


@config_app.command("show", epilog="Example: ai-admin config show --format json")
def config_show(
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The agent's settings (credentials left out) and this client's URL and token source."""
    with handled():
        target = resolve(url, token, config)
        agent = AgentClient(target)
        settings = agent.command("queue_export", {"what": "config"}).get("config", {})
        data = {"client": {"url": target.url, "token_from": target.token_from}, "agent": settings}
        emit(data, choose(fmt), Fields(data, "configuration"))


def send(
    file: Annotated[
        str, typer.Argument(help="A JSON command message ({action, params}); - reads stdin.")
    ],
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="If it submits a task, follow it to its end.")
    ] = False,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Send any command message, e.g. one of the files in commands/, and print its data."""
    from ai_admin.cli.follow import follow_task

    with handled():
        message = _message(file)
        agent = client(url, token, config)
        data = agent.send(message)
        chosen = choose(fmt)
        if wait and isinstance(data, dict) and data.get("task_id"):
            exit_with(follow_task(agent, str(data.get("merged_into") or data["task_id"]), chosen))
        emit(data, chosen)


def _message(file: str) -> Any:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
    except OSError as exc:
        raise CliFailure(
            "CLIENT_BAD_FILE", f"{file}: {exc.strerror or exc}.", ExitCode.USAGE
        ) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliFailure(
            "CLIENT_BAD_FILE",
            f"{file} is not JSON: {exc}.",
            ExitCode.USAGE,
            ['A command message is {"action": "...", "params": {...}}; see commands/.'],
        ) from None


def register(app: typer.Typer) -> None:
    """Add the queue and agent commands to ``app``."""
    app.add_typer(queue_app, name="queue")
    app.command("metrics", epilog="Example: ai-admin metrics --format csv")(metrics)
    app.command("export", epilog="Example: ai-admin export --what jobs --output jobs.json")(export)
    app.add_typer(config_app, name="config")
    app.command("send", epilog="Example: ai-admin send commands/docker_pull.json --wait")(send)
