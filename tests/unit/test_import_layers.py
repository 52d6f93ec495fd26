"""Imports flow from the doors inward, read from the source (every import, lazy ones included).

The layers, innermost first, and what each may import:

- base (``errors``, ``config``, ``private_files``, ``threads``, ``validation``): nothing of the
  agent's;
- ``queue``: base only (it knows nothing about Docker, nor about any door);
- ``schedule`` (schedules and housekeeping on APScheduler): base and the queue;
- ``wire``: base, the queue and ``schedule`` (the models of what crosses the doors are the
  views those layers build; a client may import them without the commands or Docker);
- ``docker``: base and the queue (its executors plug into ``queue.executor``);
- ``logging``: base and the queue's masking (``queue.secrets``);
- the Python API (``ai_admin.python_api`` and the package root that hands it out): base, queue,
  ``schedule`` and docker (its ``TaskQueue()`` builds the Docker executors when given none);
- ``agent``: the above but logging (it runs the Python API's queue with the Docker executors);
- ``commands``: all of the above but logging (it builds its answers with ``wire``);
- the doors: ``mcp`` (no other door), ``http`` (which carries MCP at ``/mcp``), ``cli``
  (which starts both).

Third-party boundaries: only ``ai_admin/docker`` imports ``docker``, only ``ai_admin/http``
imports ``aiohttp``, only ``ai_admin/cli`` imports ``typer``, only ``ai_admin/schedule``
imports ``apscheduler``, and the MCP SDK is imported by ``ai_admin/mcp`` and
``http/mcp_route.py`` only. No import runs against the layers, not even one made in a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ai_admin"

BASE = "base"
API = "python_api"
LAYER_OF = {
    "ai_admin": API,  # the package root hands out the Python API (on first use)
    "ai_admin.errors": BASE,
    "ai_admin.config": BASE,
    "ai_admin.private_files": BASE,
    "ai_admin.threads": BASE,
    "ai_admin.validation": BASE,
    "ai_admin.queue": "queue",
    "ai_admin.schedule": "schedule",
    "ai_admin.wire": "wire",
    "ai_admin.docker": "docker",
    "ai_admin.logging": "logging",
    "ai_admin.python_api": API,
    "ai_admin.agent": "agent",
    "ai_admin.commands": "commands",
    "ai_admin.mcp": "mcp",
    "ai_admin.http": "http",
    "ai_admin.cli": "cli",
    "ai_admin.__main__": "cli",  # `python -m ai_admin` is the command line
}
INNER = (BASE, "queue", "schedule", "wire", "docker", API, "agent", "commands")
MAY_IMPORT = {
    BASE: {BASE},
    "queue": {BASE, "queue"},
    "schedule": {BASE, "queue", "schedule"},
    "wire": {BASE, "queue", "schedule", "wire"},
    "docker": {BASE, "queue", "docker"},
    "logging": {BASE, "queue", "logging"},
    API: {BASE, "queue", "schedule", "docker", API},
    "agent": {BASE, "queue", "schedule", "docker", API, "agent"},
    "commands": set(INNER),
    "mcp": {*INNER, "logging", "mcp"},
    "http": {*INNER, "logging", "mcp", "http"},
    "cli": {*INNER, "logging", "mcp", "http", "cli"},
}
# Third-party packages and the only places that may import them.
THIRD_PARTY = {
    "docker": ("ai_admin.docker",),
    "aiohttp": ("ai_admin.http",),
    "typer": ("ai_admin.cli",),
    "apscheduler": ("ai_admin.schedule",),
    "mcp": ("ai_admin.mcp", "ai_admin.http.mcp_route"),
    "mcp_types": ("ai_admin.mcp", "ai_admin.http.mcp_route"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[str]:
    """Every module ``path`` imports, lazy imports (in a function) included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.append(".".join([*base, *([node.module] if node.module else [])]))
            else:
                assert node.module is not None
                found.append(node.module)
    return found


def layer(module: str) -> str:
    for prefix in sorted(LAYER_OF, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYER_OF[prefix]
    raise AssertionError(f"{module} belongs to no layer: add it to LAYER_OF")


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer() -> None:
    for path in MODULES:
        layer(module_name(path))


def test_no_module_imports_a_higher_layer() -> None:
    against = []
    for path in MODULES:
        importer = module_name(path)
        for imported in imports(path):
            if imported.split(".")[0] != "ai_admin":
                continue
            if layer(imported) in MAY_IMPORT[layer(importer)]:
                continue
            against.append(f"{importer} imports {imported}")
    assert against == []


def test_third_party_packages_are_imported_at_their_boundary_only() -> None:
    outside = []
    for path in MODULES:
        importer = module_name(path)
        for imported in imports(path):
            allowed = THIRD_PARTY.get(imported.split(".")[0])
            if allowed is not None and not within(importer, allowed):
                outside.append(f"{importer} imports {imported}")
    assert outside == []


def test_nothing_is_imported_by_a_string() -> None:
    """``importlib`` and ``__import__`` hide an import from mypy and from every reader."""
    by_string = []
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        if "__import__" in names or "importlib" in imports(path):
            by_string.append(module_name(path))
    assert by_string == []


@pytest.mark.parametrize(
    "module",
    [
        "ai_admin.python_api",
        "ai_admin.queue.engine",
        "ai_admin.validation",
        "ai_admin.wire.results",  # a client reads answers without the commands or Docker
    ],
)
def test_the_queue_loads_without_docker_or_a_door(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'aiohttp', 'mcp', "
        "'typer') or m.startswith(('ai_admin.docker', 'ai_admin.http', 'ai_admin.mcp', "
        "'ai_admin.cli', 'ai_admin.commands', 'ai_admin.agent'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
