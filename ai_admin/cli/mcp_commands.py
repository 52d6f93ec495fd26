"""``ai-admin mcp`` and ``ai-admin tools``, added to the CLI by ``register(app)``.

Only the commands live here; the MCP server they serve and the tool definitions they print
are ``ai_admin.mcp``'s. The SDK loads only when ``ai-admin mcp`` or ``ai-admin tools`` runs,
so the other commands start without it.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ToolFormatChoice", "register"]

_SERVER = "Agent process"


class ToolFormatChoice(StrEnum):
    """``ai_admin.mcp.tools.ToolFormat``'s values, named here so that ``--help`` needs no
    SDK (a unit test keeps the two equal)."""

    MCP = "mcp"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


def mcp(
    config: Annotated[
        Path | None, typer.Option(help="TOML configuration file (default: $AI_ADMIN_CONFIG).")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where the task database lives.")] = None,
) -> None:
    """Serve MCP on stdin/stdout, for desktop assistants.

    Every command is a tool, each task's log a resource, and diagnose_task a prompt. The whole
    agent (queue and Docker work) runs in this process; stdout carries only the protocol and
    the log goes to stderr.
    """
    from ai_admin.cli import loop
    from ai_admin.cli.settings import settings_or_exit, store_or_exit
    from ai_admin.logging import setup_logging
    from ai_admin.mcp.stdio import serve_stdio  # the SDK loads only for this command

    settings = settings_or_exit(config, {"data_dir": data_dir})
    setup_logging(settings.log_level, settings.log_format, stream=sys.stderr)
    with store_or_exit():
        loop.run(serve_stdio(settings))


def tools(
    fmt: Annotated[
        ToolFormatChoice,
        typer.Option(
            "--format",
            help="mcp: as tools/list answers; openai / anthropic: function schemas for "
            "POST /cmd messages.",
        ),
    ] = ToolFormatChoice.MCP,
) -> None:
    """Print every command's tool definition as JSON.

    For assistants that take function schemas directly rather than speaking MCP.
    """
    from ai_admin.mcp.tools import ToolFormat, export_tools

    print(json.dumps(export_tools(ToolFormat(fmt.value)), indent=2))


_EXAMPLES = {"mcp": "ai-admin mcp", "tools": "ai-admin tools --format openai"}


def register(app: typer.Typer) -> None:
    """Add ``mcp`` and ``tools`` to ``app`` (once: a second call changes nothing)."""
    known = {command.name for command in app.registered_commands}
    for name, function in (("mcp", mcp), ("tools", tools)):
        if name not in known:
            app.command(name, rich_help_panel=_SERVER, epilog=f"Example: {_EXAMPLES[name]}")(
                function
            )
