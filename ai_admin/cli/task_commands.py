"""``build``, ``push``, ``pull`` (submit, optionally ``--wait``), ``status``, ``list`` and
``manage pause|resume|retry|cancel``: the client commands about tasks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

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
    parse_params,
)
from ai_admin.cli.exits import CliFailure, ExitCode
from ai_admin.cli.output import Format, Records, choose, emit
from ai_admin.cli.units import clock, progress_numbers
from ai_admin.cli.views import TASK_COLUMNS, short_type, status_fields, task_records

__all__ = ["manage_app", "register"]

_QUEUE = "Queue"
Priority = Annotated[
    str,
    typer.Option(
        help="critical, high, normal or low: critical runs first.", rich_help_panel=_QUEUE
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(help="Seconds before the task ends as timeout.", rich_help_panel=_QUEUE),
]
Retries = Annotated[
    int | None,
    typer.Option(help="Automatic retries of transient failures.", rich_help_panel=_QUEUE),
]
QueueName = Annotated[
    str | None, typer.Option("--queue", help="The named queue to run in.", rich_help_panel=_QUEUE)
]
DependsOn = Annotated[
    list[str] | None,
    typer.Option(
        "--depends-on",
        help="A task that must complete first (repeatable).",
        rich_help_panel=_QUEUE,
        show_default=False,
    ),
]
Wait = Annotated[
    bool,
    typer.Option(
        "--wait",
        "-w",
        help="Follow the task to its end with a progress bar; exit 0 only if it completed.",
    ),
]
Username = Annotated[
    str | None, typer.Option(help="Registry user for this task only (password on stdin).")
]
_PRIORITIES = ("critical", "high", "normal", "low")


def _queue_params(
    priority: str,
    timeout: float | None,
    retries: int | None,
    queue: str | None,
    depends_on: list[str] | None,
    username: str | None = None,
) -> dict[str, Any]:
    """The queue options as the submit commands take them; ``queue`` and ``depends_on`` only
    when given (an agent that knows no named queues refuses them with its own error)."""
    if priority not in _PRIORITIES:
        raise CliFailure(
            "CLIENT_BAD_PARAM",
            f"--priority {priority!r} is none of {', '.join(_PRIORITIES)}.",
            ExitCode.USAGE,
        )
    params: dict[str, Any] = {"priority": priority}
    if timeout is not None:
        params["timeout"] = timeout
    if retries is not None:
        params["max_retries"] = retries
    if queue is not None:
        params["queue"] = queue
    if depends_on:
        params["depends_on"] = list(depends_on)
    if username is not None:
        if sys.stdin.isatty():
            import getpass

            password = getpass.getpass(f"Password for {username}: ")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        params["auth"] = {"username": username, "password": password}
    return params


def split_reference(image: str, tag: str | None) -> tuple[str, str | None]:
    """``registry:5000/app:1.4`` as (``registry:5000/app``, ``1.4``) unless ``--tag`` is
    given; a digest reference stays whole."""
    if tag is not None or "@" in image:
        return image, tag
    name, sep, last = image.rpartition("/")
    if ":" in last:
        repo, _, found = last.rpartition(":")
        return f"{name}{sep}{repo}", found
    return image, None


def submit(
    action: str,
    params: dict[str, Any],
    wait: bool,
    fmt: Format | None,
    url: str | None,
    token: str | None,
    config: Path | None,
) -> None:
    """Submit; print the task id (or the answer, in JSON); with ``wait`` follow it."""
    from ai_admin.cli.follow import follow_task

    with handled():
        agent = client(url, token, config)
        data = agent.command(action, params)
        chosen = choose(fmt)
        followed = str(data.get("merged_into") or data["task_id"])
        if wait:
            pass  # the end state is printed instead
        elif chosen is Format.TABLE:
            print(data["task_id"])
        else:
            emit(data, chosen)
        if data.get("merged_into"):
            print(
                f"ai-admin: an identical task was waiting or running; merged into {followed}",
                file=sys.stderr,
            )
        if wait:
            print(f"ai-admin: task {data['task_id']} submitted; following it", file=sys.stderr)
            exit_with(follow_task(agent, followed, chosen))


def pull(
    image: Annotated[str, typer.Argument(help="Image reference, e.g. 127.0.0.1:5000/app:1.4.")],
    tag: Annotated[
        str | None, typer.Option(help="Tag (default: the reference's, else latest).")
    ] = None,
    platform: Annotated[str | None, typer.Option(help="e.g. linux/amd64.")] = None,
    wait: Wait = False,
    priority: Priority = "normal",
    timeout: Timeout = None,
    retries: Retries = None,
    queue: QueueName = None,
    depends_on: DependsOn = None,
    username: Username = None,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Queue a pull and print the task id; --wait follows it to its end."""
    name, found = split_reference(image, tag)
    params: dict[str, Any] = {"image_name": name}
    if found:
        params["tag"] = found
    if platform:
        params["platform"] = platform
    with handled():
        params |= _queue_params(priority, timeout, retries, queue, depends_on, username)
    submit("docker_pull", params, wait, fmt, url, token, config)


def push(
    image: Annotated[
        str, typer.Argument(help="Local image reference, e.g. 127.0.0.1:5000/app:1.4.")
    ],
    tag: Annotated[
        str | None, typer.Option(help="Tag (default: the reference's, else latest).")
    ] = None,
    all_tags: Annotated[bool, typer.Option(help="Push every local tag of the repository.")] = False,
    wait: Wait = False,
    priority: Priority = "normal",
    timeout: Timeout = None,
    retries: Retries = None,
    queue: QueueName = None,
    depends_on: DependsOn = None,
    username: Username = None,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Queue a push of a local image and print the task id; --wait follows it to its end."""
    name, found = split_reference(image, tag)
    params: dict[str, Any] = {"image_name": name}
    if found and not all_tags:
        params["tag"] = found
    if all_tags:
        params["all_tags"] = True
    with handled():
        params |= _queue_params(priority, timeout, retries, queue, depends_on, username)
    submit("docker_push", params, wait, fmt, url, token, config)


def build(
    context: Annotated[
        str | None,
        typer.Argument(help="Build context: a directory under the agent's allowed_roots."),
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Tag for the image (repeatable).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="A local Dockerfile, sent as text.", exists=True),
    ] = None,
    dockerfile_name: Annotated[
        str | None, typer.Option(help="The Dockerfile's name inside the context.")
    ] = None,
    build_args: Annotated[
        list[str] | None, typer.Option("--build-arg", help="KEY=VALUE (repeatable).")
    ] = None,
    labels: Annotated[
        list[str] | None, typer.Option("--label", help="KEY=VALUE (repeatable).")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Stage to build.")] = None,
    no_cache: Annotated[bool, typer.Option(help="Do not use the build cache.")] = False,
    pull_base: Annotated[bool, typer.Option("--pull", help="Pull newer base images.")] = False,
    network: Annotated[str | None, typer.Option(help="Network mode for RUN steps.")] = None,
    platform: Annotated[str | None, typer.Option(help="e.g. linux/amd64.")] = None,
    push_after: Annotated[bool, typer.Option("--push", help="Push every tag afterwards.")] = False,
    wait: Wait = False,
    priority: Priority = "normal",
    timeout: Timeout = None,
    retries: Retries = None,
    queue: QueueName = None,
    depends_on: DependsOn = None,
    username: Username = None,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Queue an image build and print the task id; --wait follows it to its end.

    Give a CONTEXT directory on the agent's machine, a local Dockerfile (--file), or both."""
    params: dict[str, Any] = {"tags": list(tags or [])}
    if context is not None:
        local = Path(context)
        params["context_path"] = str(local.resolve()) if local.exists() else context
    if file is not None:
        params["dockerfile"] = file.read_text()
    optional = {
        "dockerfile_name": dockerfile_name,
        "target": target,
        "network_mode": network,
        "platform": platform,
    }
    params |= {k: v for k, v in optional.items() if v is not None}
    params |= {k: True for k, v in (("no_cache", no_cache), ("pull", pull_base)) if v}
    if push_after:
        params["push"] = True
    with handled():
        if build_args:
            params["build_args"] = {k: str(v) for k, v in _pairs(build_args).items()}
        if labels:
            params["labels"] = {k: str(v) for k, v in _pairs(labels).items()}
        params |= _queue_params(priority, timeout, retries, queue, depends_on, username)
    submit("docker_build", params, wait, fmt, url, token, config)


def _pairs(values: list[str]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else str(v) for k, v in parse_params(values).items()}


def status(
    task_id: Annotated[
        str | None, typer.Argument(help="A task's id; none: the whole queue.")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-F", help="Follow to the end (all tasks' changes without TASK_ID)."
        ),
    ] = False,
    logs: Annotated[bool, typer.Option("--logs", help="Include the task's log lines.")] = False,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A task's status (with TASK_ID), or the queue's; --follow follows it to its end.

    Following a task exits 0 when it completed and 1 when it failed, timed out or was
    cancelled; without --follow the status is printed and the command exits 0."""
    from ai_admin.cli.follow import follow_task

    with handled():
        agent = client(url, token, config)
        chosen = choose(fmt)
        if task_id is None and follow:
            _stream_all(agent, chosen)
            return
        if task_id is None:
            data = agent.command("queue_status", {})
            emit(data, chosen, _queue_fields(data))
            return
        if follow:
            exit_with(follow_task(agent, task_id, chosen))
        summary = agent.command("queue_task_status", {"task_id": task_id, "include_logs": logs})
        emit(summary, chosen, status_fields(summary))


def _queue_fields(data: dict[str, Any]) -> Any:
    from ai_admin.cli.output import Fields

    keys = ("summary", "queue", "performance", "counters", "distributions")
    return Fields({k: data[k] for k in keys if k in data}, "queue")


def _stream_all(agent: Any, fmt: Format) -> None:
    """Every task's changes, a line each (JSON lines with --format json), until Ctrl-C."""
    import json

    from ai_admin.cli.event_stream import events

    for event in events(agent):
        if "task_id" not in event:
            continue
        if fmt is Format.JSON:
            print(json.dumps(event), flush=True)
            continue
        parts = [
            clock(event.get("at")),
            str(event["task_id"]),
            short_type(event.get("task_type")),
            str(event.get("status")),
            f"{float(event.get('progress') or 0):.0f}%",
            str(event.get("line") or event.get("current_step") or ""),
            progress_numbers(event.get("progress_detail")),
        ]
        print("  ".join(p for p in parts if p), flush=True)


_TASK_TYPES = {"build": "docker_build", "push": "docker_push", "pull": "docker_pull"}


def list_tasks(
    statuses: Annotated[
        list[str] | None,
        typer.Option(
            "--status", "-s", help="Only tasks in this status (repeatable).", show_default=False
        ),
    ] = None,
    task_type: Annotated[
        str | None, typer.Option("--type", help="build, push or pull.", show_default=False)
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Only tasks of this named queue.")] = None,
    limit: Annotated[int, typer.Option(help="Tasks per page.", min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many (newest first).", min=0)] = 0,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List tasks, newest first, a page at a time."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if statuses:
        params["status"] = list(statuses)
    if task_type:
        params["task_type"] = _TASK_TYPES.get(task_type, task_type)
    if queue is not None:
        params["queue"] = queue
    with handled():
        data = client(url, token, config).command("queue_list_tasks", params)
        emit(data, choose(fmt), task_records(data))


manage_app = typer.Typer(
    rich_markup_mode=None,
    help="Pause, resume, retry or cancel one task.",
    no_args_is_help=True,
    epilog="Example: ai-admin manage cancel 123e4567-e89b-12d3-a456-426614174000 --yes",
)
TaskId = Annotated[str, typer.Argument(help="The task's id.")]


def _manage(
    action: str,
    task_id: str,
    fmt: Format | None,
    target: tuple[str | None, str | None, Path | None],
    force: bool = False,
) -> None:
    params: dict[str, Any] = {"action": action, "task_id": task_id}
    if force:
        params["force"] = True
    with handled():
        data = client(*target).command("queue_manage", params)
        task = data.get("task") or {}
        emit(data, choose(fmt), Records([task], TASK_COLUMNS, title=f"{action}: {task_id}"))


@manage_app.command(epilog="Example: ai-admin manage pause 123e4567-e89b-12d3-a456-426614174000")
def pause(
    task_id: TaskId,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Hold a waiting task, or stop a running one (it runs again on resume)."""
    _manage("pause", task_id, fmt, (url, token, config))


@manage_app.command(epilog="Example: ai-admin manage resume 123e4567-e89b-12d3-a456-426614174000")
def resume(
    task_id: TaskId,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Let a paused task run again."""
    _manage("resume", task_id, fmt, (url, token, config))


@manage_app.command(epilog="Example: ai-admin manage retry 123e4567-e89b-12d3-a456-426614174000")
def retry(
    task_id: TaskId,
    force: Annotated[bool, typer.Option(help="Retry past the task's max_retries.")] = False,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run a failed, cancelled or timed-out task again."""
    _manage("retry", task_id, fmt, (url, token, config), force)


@manage_app.command(
    epilog="Example: ai-admin manage cancel 123e4567-e89b-12d3-a456-426614174000 --yes"
)
def cancel(
    task_id: TaskId,
    yes: YesOpt = False,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Cancel a task (a running one is stopped); asks first unless --yes."""
    confirm(f"Cancel task {task_id}?", yes)
    _manage("cancel", task_id, fmt, (url, token, config))


def register(app: typer.Typer) -> None:
    """Add the task commands to ``app``."""
    examples = {
        "pull": "ai-admin pull 127.0.0.1:5000/team/app:1.4 --wait",
        "push": "ai-admin push 127.0.0.1:5000/team/app:1.4 --priority high --wait",
        "build": "ai-admin build /srv/builds/app -t 127.0.0.1:5000/team/app:1.4 --push --wait",
        "status": "ai-admin status 123e4567-e89b-12d3-a456-426614174000 --follow",
        "list": "ai-admin list --status failed --type pull --limit 20 --format csv",
    }
    functions: dict[str, Callable[..., None]] = {
        "pull": pull,
        "push": push,
        "build": build,
        "status": status,
        "list": list_tasks,
    }
    for name, function in functions.items():
        app.command(name, epilog=f"Example: {examples[name]}")(function)
    app.add_typer(manage_app, name="manage")
