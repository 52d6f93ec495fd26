"""``schedule`` and ``batch``: subcommands over the agent's ``schedule_*`` and ``batch_*``
commands, made from their names.

Each subcommand sends its command through ``POST /cmd`` with the params its options give
(``--param KEY=VALUE`` adds any other), and prints the answer's data. An agent that does not
have the command answers ``REQUEST_UNKNOWN_ACTION``, which is printed like any failure (exit
status 7, ``UNSUPPORTED``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ai_admin.cli.common import (
    ConfigOpt,
    FormatOpt,
    ParamOpt,
    TokenOpt,
    UrlOpt,
    YesOpt,
    client,
    confirm,
    handled,
    parse_params,
)
from ai_admin.cli.exits import CliFailure, ExitCode
from ai_admin.cli.output import Format, choose, emit, generic_view

__all__ = ["batch_app", "register", "schedule_app"]

schedule_app = typer.Typer(
    rich_markup_mode=None,
    help="Schedules: submit a command on a cron expression, an interval or once.",
    no_args_is_help=True,
    epilog="Example: ai-admin schedule create --name nightly --cron '0 3 * * *' "
    "--command commands/docker_pull.json",
)
batch_app = typer.Typer(
    rich_markup_mode=None,
    help="Batches: sets of tasks run one batch at a time, with one progress.",
    no_args_is_help=True,
    epilog="Example: ai-admin batch submit release.json --name release-1.4",
)


ItemId = Annotated[str, typer.Argument(metavar="ID", help="The schedule's or batch's id.")]


def _run(action: str, params: dict[str, Any], fmt: Format | None, target: tuple[Any, ...]) -> None:
    with handled():
        data = client(*target).command(action, params)
        emit(data, choose(fmt), generic_view(data, action))


def _by_id(
    app: typer.Typer,
    verb: str,
    action: str,
    id_key: str,
    summary: str,
    *,
    ask: str | None = None,
) -> None:
    """``app VERB ID``: run ``action`` with ``{id_key: ID}``; with ``ask``, a destructive
    one that takes ``--yes`` and asks first without it."""

    def run(item_id: str, param: list[str] | None, fmt: Format | None, target: Any) -> None:
        with handled():
            params = {id_key: item_id, **parse_params(param)}
        _run(action, params, fmt, target)

    def command(
        item_id: ItemId,
        param: ParamOpt = None,
        fmt: FormatOpt = None,
        url: UrlOpt = None,
        token: TokenOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        run(item_id, param, fmt, (url, token, config))

    def asking(
        item_id: ItemId,
        param: ParamOpt = None,
        yes: YesOpt = False,
        fmt: FormatOpt = None,
        url: UrlOpt = None,
        token: TokenOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        assert ask is not None
        confirm(ask.format(id=item_id), yes)
        run(item_id, param, fmt, (url, token, config))

    chosen = command if ask is None else asking
    chosen.__doc__ = summary + ("; asks first unless --yes." if ask else ".")
    group = app.info.name or ""
    yes = " --yes" if ask else ""
    app.command(verb, epilog=f"Example: ai-admin {group} {verb} ID{yes}")(chosen)


def _plain(app: typer.Typer, verb: str, action: str, summary: str) -> None:
    """``app VERB``: run ``action`` with the ``--param`` values."""

    def command(
        param: ParamOpt = None,
        fmt: FormatOpt = None,
        url: UrlOpt = None,
        token: TokenOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        with handled():
            params = parse_params(param)
        _run(action, params, fmt, (url, token, config))

    command.__doc__ = summary + "."
    group = app.info.name or ""
    app.command(verb, epilog=f"Example: ai-admin {group} {verb} --format json")(command)


def _json_of(value: str) -> Any:
    """``value`` as JSON: inline JSON, or the path of a file that holds it."""
    text = value
    if not value.lstrip().startswith(("{", "[")):
        try:
            text = Path(value).read_text()
        except OSError as exc:
            raise CliFailure(
                "CLIENT_BAD_FILE", f"{value}: {exc.strerror or exc}.", ExitCode.USAGE
            ) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliFailure(
            "CLIENT_BAD_FILE", f"{value} is not JSON: {exc}.", ExitCode.USAGE
        ) from None


@schedule_app.command(
    "create",
    epilog="Example: ai-admin schedule create --name nightly --cron '0 3 * * *' "
    "--command commands/docker_pull.json",
)
def schedule_create(
    name: Annotated[str, typer.Option(help="The schedule's name.")],
    command: Annotated[
        str, typer.Option(help="The command message to submit: a JSON file, or inline JSON.")
    ],
    cron: Annotated[str | None, typer.Option(help="Five-field cron expression.")] = None,
    interval: Annotated[float | None, typer.Option(help="Every this many seconds.")] = None,
    at: Annotated[str | None, typer.Option(help="Once, at this ISO 8601 time.")] = None,
    timezone: Annotated[str | None, typer.Option(help="e.g. Europe/Paris.")] = None,
    param: ParamOpt = None,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a schedule that submits COMMAND on a cron expression, an interval or once."""
    with handled():
        params: dict[str, Any] = {"name": name, "command": _json_of(command)}
        optional = {"cron": cron, "interval_s": interval, "at": at, "timezone": timezone}
        params |= {k: v for k, v in optional.items() if v is not None}
        params |= parse_params(param)
    _run("schedule_create", params, fmt, (url, token, config))


@batch_app.command(
    "submit", epilog="Example: ai-admin batch submit release.json --name release-1.4 --parallel"
)
def batch_submit(
    file: Annotated[
        str,
        typer.Argument(help='JSON: a list of command messages, or {"tasks": [...]}.'),
    ],
    name: Annotated[str | None, typer.Option(help="The batch's name.")] = None,
    queue: Annotated[str | None, typer.Option(help="The named queue to run in.")] = None,
    serial: Annotated[
        bool, typer.Option("--serial/--parallel", help="One batch at a time in its queue.")
    ] = True,
    param: ParamOpt = None,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Submit a batch of tasks; prints the batch id and the task ids."""
    with handled():
        document = _json_of(file)
        tasks = document.get("tasks") if isinstance(document, dict) else document
        params: dict[str, Any] = {"tasks": tasks, "serial": serial}
        if name is not None:
            params["name"] = name
        if queue is not None:
            params["queue"] = queue
        params |= parse_params(param)
    _run("batch_submit", params, fmt, (url, token, config))


@batch_app.command("move", epilog="Example: ai-admin batch move ID --position 1")
def batch_move(
    batch_id: Annotated[str, typer.Argument(metavar="ID", help="The batch_id.")],
    position: Annotated[int, typer.Option(help="Its new place among waiting batches (1 = next).")],
    param: ParamOpt = None,
    fmt: FormatOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Move a waiting batch to another place in its queue."""
    with handled():
        params = {"batch_id": batch_id, "position": position, **parse_params(param)}
    _run("batch_move", params, fmt, (url, token, config))


def _build_groups() -> None:
    schedule_app.info.name = "schedule"
    batch_app.info.name = "batch"
    _plain(schedule_app, "list", "schedule_list", "Every schedule with its next and last run")
    for verb, summary in (
        ("get", "One schedule: next run, last run and the task that run submitted"),
        ("pause", "Stop a schedule's firings until resumed"),
        ("resume", "Let a paused schedule fire again"),
    ):
        _by_id(schedule_app, verb, f"schedule_{verb}", "schedule_id", summary)
    _by_id(
        schedule_app,
        "delete",
        "schedule_delete",
        "schedule_id",
        "Delete a schedule",
        ask="Delete schedule {id}?",
    )
    _plain(batch_app, "list", "batch_list", "Every batch with its state and position")
    for verb, action, summary in (
        ("status", "batch_status", "A batch's state, position, counts and overall progress"),
        ("stop", "batch_stop", "Stop a batch: running tasks finish, nothing new starts"),
        ("start", "batch_start", "Start a stopped batch again"),
    ):
        _by_id(batch_app, verb, action, "batch_id", summary)
    _by_id(
        batch_app,
        "cancel",
        "batch_cancel",
        "batch_id",
        "Cancel a batch's tasks",
        ask="Cancel batch {id}?",
    )
    _by_id(
        batch_app,
        "remove",
        "batch_remove",
        "batch_id",
        "Remove a finished batch",
        ask="Remove batch {id}?",
    )


_build_groups()


def register(app: typer.Typer) -> None:
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(batch_app, name="batch")
