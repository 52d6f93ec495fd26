"""Settings for a command: read, or a one-line error per problem and exit status 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ai_admin.config import ConfigError, Settings, load_settings


def settings_or_exit(config: Path | None, flags: dict[str, Any]) -> Settings:
    try:
        return load_settings(config, flags)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"ai-admin: configuration error: {line}", file=sys.stderr)
        raise typer.Exit(2) from None
