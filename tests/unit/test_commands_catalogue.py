"""``commands/``: one ready-to-send message per command, exactly what the registry produces.

The files are written by ``scripts/write-command-catalogue``; when a command or an example
changes, these tests fail until the script has been run again, so the catalogue never drifts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ai_admin.commands import REGISTRY, catalogue
from ai_admin.validation import parse

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "commands"
SCRIPT = ROOT / "scripts" / "write-command-catalogue"
FIX = "run scripts/write-command-catalogue"

# The three example messages the project started from, as written (queue_manage: one of four).
FIRST_EXAMPLE_ID = "123e4567-e89b-12d3-a456-426614174000"
FIRST_EXAMPLES = {
    "queue_status": {"include_logs": False, "detailed": True},
    "queue_task_status": {"task_id": FIRST_EXAMPLE_ID, "include_logs": True, "detailed": True},
}


def test_the_catalogue_is_what_the_registry_produces() -> None:
    assert catalogue.differences(CATALOGUE) == [], FIX
    for name, text in catalogue.catalogue().items():
        assert (CATALOGUE / name).read_text() == text, FIX


def test_one_file_per_command_named_after_it() -> None:
    assert sorted(p.stem for p in CATALOGUE.glob("*.json")) == sorted(REGISTRY.names())
    for path in CATALOGUE.glob("*.json"):
        message = json.loads(path.read_text())
        assert set(message) == {"action", "params"}
        assert message["action"] == path.stem


@pytest.mark.parametrize("name", sorted(REGISTRY.names()))
def test_every_example_is_valid_for_its_command(name: str) -> None:
    message = json.loads((CATALOGUE / f"{name}.json").read_text())
    command = REGISTRY.get(name)
    assert command is not None
    parse(command.params, message["params"], strict=True)  # raises when it is not
    if command.params.model_fields:
        assert message["params"], f"{name} takes params; its example should show some"


def test_the_original_examples_are_kept_as_written() -> None:
    for name, params in FIRST_EXAMPLES.items():
        text = (CATALOGUE / f"{name}.json").read_text()
        assert json.loads(text) == {"action": name, "params": params}
        assert text == json.dumps({"action": name, "params": params}, indent=2) + "\n"
    manage = json.loads((CATALOGUE / "queue_manage.json").read_text())
    assert manage["params"]["task_id"] == FIRST_EXAMPLE_ID
    assert manage["params"]["action"] in {"pause", "resume", "retry", "cancel"}


def test_the_script_checks_and_repairs_a_catalogue(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), "--dir", str(tmp_path), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    assert run("--check").returncode == 1  # empty: every file missing
    (tmp_path / "retired_command.json").write_text("{}\n")
    (tmp_path / "queue_status.json").write_text('{"action": "queue_status"}\n')
    check = run("--check")
    assert check.returncode == 1
    assert "retired_command.json: no such command" in check.stderr
    assert "queue_status.json: out of date" in check.stderr
    assert "commands.json: missing" in check.stderr
    assert not (tmp_path / "commands.json").exists()  # --check changes nothing

    written = run()
    assert written.returncode == 0, written.stderr
    assert catalogue.differences(tmp_path) == []
    assert not (tmp_path / "retired_command.json").exists()
    assert run("--check").returncode == 0


def test_the_script_passes_on_the_repository() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
