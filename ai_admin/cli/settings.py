"""Start-up problems a command reports in one line each, then exits: a bad configuration
(exit status 2) and a task database that cannot be used (exit status 1)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from ai_admin.config import ConfigError, Settings, load_settings
from ai_admin.errors import StoreError


def settings_or_exit(config: Path | None, flags: dict[str, Any]) -> Settings:
    try:
        return load_settings(config, flags)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"ai-admin: configuration error: {line}", file=sys.stderr)
        raise typer.Exit(2) from None


@contextlib.contextmanager
def store_or_exit() -> Iterator[None]:
    """A database that cannot be opened (or written while starting) stops the command with
    the store's one line, which names the file and what to do; never a traceback."""
    try:
        yield
    except StoreError as exc:
        print(f"ai-admin: {exc.message}", file=sys.stderr)
        raise typer.Exit(1) from None
