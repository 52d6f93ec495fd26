"""What every client command shares: the agent options (``--url``, ``--token``,
``--config``), ``--format``, ``--yes``, and one way of ending (``handled``): a failure is
printed with its code and suggestions and exits with its class's status."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from ai_admin.cli.agent_client import AgentClient
from ai_admin.cli.exits import CliFailure, ExitCode
from ai_admin.cli.output import Format, print_failure
from ai_admin.cli.target import resolve

__all__ = [
    "ConfigOpt",
    "FormatOpt",
    "ParamOpt",
    "TokenOpt",
    "UrlOpt",
    "YesOpt",
    "client",
    "confirm",
    "exit_with",
    "handled",
    "parse_params",
]

_AGENT = "Agent"
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="The agent's address (default: host and port of its configuration, "
        "http://127.0.0.1:8060).",
        rich_help_panel=_AGENT,
        show_default=False,
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Bearer token (default: $AI_ADMIN_TOKEN, the configured token, the token file "
        "in the agent's data directory).",
        rich_help_panel=_AGENT,
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The agent's TOML configuration file, read for its address and token "
        "(default: $AI_ADMIN_CONFIG, ~/.config/ai-admin/config.toml, /etc/ai-admin/config.toml).",
        rich_help_panel=_AGENT,
        show_default=False,
    ),
]
FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-o",
        help="Output format (default: table on a terminal, json otherwise).",
        show_default=False,
        case_sensitive=False,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="A parameter KEY=VALUE (VALUE read as JSON when it is JSON); repeatable.",
        show_default=False,
    ),
]


def client(url: str | None, token: str | None, config: Path | None) -> AgentClient:
    return AgentClient(resolve(url, token, config))


def exit_with(code: ExitCode) -> NoReturn:
    raise typer.Exit(int(code))


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Run a command's body: a ``CliFailure`` is printed and exits with its status; Ctrl-C
    exits 130."""
    try:
        yield
    except CliFailure as failure:
        print_failure(failure)
        exit_with(failure.exit_code)
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        exit_with(ExitCode.INTERRUPTED)


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` unless ``--yes``; anything but yes (or no answer at all) exits
    ``DECLINED`` with nothing changed."""
    if yes:
        return
    try:
        answer = typer.confirm(question, default=False, err=True)
    except typer.Abort:
        answer = False
    if not answer:
        if not sys.stdin.isatty():
            print("", file=sys.stderr)  # the answer was not echoed: end the prompt's line
        print("ai-admin: declined; nothing was changed", file=sys.stderr)
        exit_with(ExitCode.DECLINED)


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b=x"]`` as ``{"a": 1, "b": "x"}``: a value that is JSON is read as JSON."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CliFailure(
                "CLIENT_BAD_PARAM",
                f"{pair!r} is not KEY=VALUE.",
                ExitCode.USAGE,
                ["Write each parameter as --param KEY=VALUE, e.g. --param limit=10."],
            )
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params
