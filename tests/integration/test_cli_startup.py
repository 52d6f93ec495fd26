"""`ai-admin serve` refuses a bad configuration in one line and never starts half-configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_SERVE = [sys.executable, "-c", "from ai_admin.cli.main import app; app()", "serve"]


def _serve(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AI_ADMIN_")}
    return subprocess.run(
        [*_SERVE, "--data-dir", str(tmp_path / "data"), "--port", "0", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({"AI_ADMIN_MAX_CONCURRENT": "zero"}, (), "max_concurrent = 'zero'"),
        ({"AI_ADMIN_MAX_CONCURENT": "2"}, (), "AI_ADMIN_MAX_CONCURENT: unknown setting"),
        ({}, ("--port", "70000"), "port = 70000"),
        ({"AI_ADMIN_LOG_FORMAT": "xml"}, (), "log_format = 'xml'"),
    ],
)
def test_a_wrong_value_stops_start_up_with_one_line_naming_it(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...], expected: str
) -> None:
    result = _serve(tmp_path, *args, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ai-admin: configuration error: ")
    assert expected in lines[0]
    assert not (tmp_path / "data").exists()  # nothing was created: the agent never started


def test_a_misspelled_key_in_the_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "ai-admin.toml"
    config.write_text("max_concurent = 2\n")
    result = _serve(tmp_path, "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ai-admin: configuration error: max_concurent: unknown setting "
        "(config/ai-admin.toml lists the keys)"
    )


def test_the_shipped_configuration_file_documents_every_setting_with_its_default() -> None:
    from ai_admin.config import Settings, load_settings

    path = Path(__file__).parents[2] / "config" / "ai-admin.toml"
    text = path.read_text()
    for key in Settings.model_fields:
        assert key in text, f"{key} is not documented in {path}"
    assert load_settings(path).model_dump() == Settings().model_dump()
