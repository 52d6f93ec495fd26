"""The ``commands/`` catalogue: one ready-to-send message per command, written from the registry.

``scripts/write-command-catalogue`` writes the files; a test checks that they equal what the
registry produces, so the catalogue never drifts from the commands it shows.
"""

from __future__ import annotations

import json
from pathlib import Path

from ai_admin.commands.registry import REGISTRY, Registry

SUFFIX = ".json"


def catalogue(registry: Registry = REGISTRY) -> dict[str, str]:
    """File name → text: each command's example message, pretty-printed as the README shows them."""
    return {
        f"{command.name}{SUFFIX}": json.dumps(command.example_message(), indent=2) + "\n"
        for command in registry
    }


def differences(directory: Path, registry: Registry = REGISTRY) -> list[str]:
    """What ``write`` would change in ``directory``, one ``"<file>: <why>"`` line per file;
    empty when the files are in step with the registry."""
    wanted = catalogue(registry)
    present = {p.name for p in directory.glob(f"*{SUFFIX}")} if directory.is_dir() else set()
    lines = [f"{name}: missing" for name in sorted(wanted.keys() - present)]
    lines += [f"{name}: no such command" for name in sorted(present - wanted.keys())]
    lines += [
        f"{name}: out of date"
        for name in sorted(wanted.keys() & present)
        if (directory / name).read_text() != wanted[name]
    ]
    return lines


def write(directory: Path, registry: Registry = REGISTRY) -> list[str]:
    """Bring ``directory`` in step with the registry; returns what changed."""
    changes = differences(directory, registry)
    directory.mkdir(parents=True, exist_ok=True)
    wanted = catalogue(registry)
    for name, text in wanted.items():
        path = directory / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    for path in directory.glob(f"*{SUFFIX}"):
        if path.name not in wanted:
            path.unlink()
    return changes
