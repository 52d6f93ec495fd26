"""The ``ai-admin`` command: the agent's own commands (``serve``, ``mcp``, ``tools``,
``health``, ``version``) and the client commands that talk to a running agent over HTTP.

Start-up stays light: this module and the client commands import the standard library,
typer and (to draw a table or a bar) rich; ``serve``, ``mcp`` and ``tools`` import the agent,
aiohttp, Docker and the MCP SDK only when they run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ai_admin import __version__
from ai_admin.cli import orchestration, queue_commands, task_commands
from ai_admin.cli.mcp_commands import register as register_mcp_commands
from ai_admin.cli.monitor import monitor

app = typer.Typer(
    name="ai-admin",
    help="Docker task orchestration agent: queued build, push and pull with live progress.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    epilog="Example: ai-admin pull 127.0.0.1:5000/team/app:1.4 --wait  "
    "(docs/cli.md describes every command)",
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        help="TOML configuration file (default: $AI_ADMIN_CONFIG, else "
        "$XDG_CONFIG_HOME/ai-admin/config.toml, else /etc/ai-admin/config.toml, if there).",
    ),
]
_SERVER = "Agent process"


def _print_version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Docker task orchestration agent: queued build, push and pull with live progress."""


@app.command(rich_help_panel=_SERVER, epilog="Example: ai-admin serve --port 8060")
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (0 picks a free one).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the task database and token live.")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="TRACE .. CRITICAL.")] = None,
    log_format: Annotated[str | None, typer.Option(help="text or json.")] = None,
) -> None:
    """Run the agent: the HTTP API on HOST:PORT and the task queue in DATA_DIR."""
    from ai_admin.cli import loop
    from ai_admin.cli.serve import CannotListen
    from ai_admin.cli.serve import serve as run
    from ai_admin.cli.settings import settings_or_exit, store_or_exit
    from ai_admin.http.auth import InsecureListen
    from ai_admin.logging import setup_logging

    flags = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "log_level": log_level,
        "log_format": log_format,
    }
    settings = settings_or_exit(config, flags)
    setup_logging(settings.log_level, settings.log_format)
    try:
        with store_or_exit():
            loop.run(run(settings))
    except (InsecureListen, CannotListen) as exc:
        print(f"ai-admin: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None


@app.command(rich_help_panel=_SERVER, epilog="Example: ai-admin version")
def version() -> None:
    """Print the version."""
    print(__version__)


@app.command(rich_help_panel=_SERVER, epilog="Example: ai-admin health --timeout 2")
def health(
    config: ConfigOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.", min=0.1)] = 5.0,
) -> None:
    """Ask the running agent's /health; exit 0 when it is up and reaches its Docker engine.

    The agent's address comes from the settings `serve` reads; an agent on 0.0.0.0 is asked on
    127.0.0.1. The container image's HEALTHCHECK runs this.
    """
    from ai_admin.cli.health import probe
    from ai_admin.cli.settings import settings_or_exit

    healthy, line = probe(settings_or_exit(config, {}), timeout)
    print(line, file=sys.stdout if healthy else sys.stderr)
    if not healthy:
        raise typer.Exit(1)


register_mcp_commands(app)
task_commands.register(app)
app.command("monitor", epilog="Example: ai-admin monitor --interval 0.5")(monitor)
queue_commands.register(app)
orchestration.register(app)
