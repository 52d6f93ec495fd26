"""The command-line client's own logic, without an agent: exit statuses by failure class,
the server-sent-events parser, where the URL and token come from, references and params as
typed, the three output formats, and an example in every command's help."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ai_admin.cli import output
from ai_admin.cli.common import parse_params
from ai_admin.cli.event_stream import Frame, frames
from ai_admin.cli.exits import CliFailure, ExitCode, exit_code_for
from ai_admin.cli.main import app
from ai_admin.cli.mcp_commands import ToolFormatChoice
from ai_admin.cli.target import resolve
from ai_admin.cli.task_commands import split_reference
from ai_admin.cli.views import task_records
from ai_admin.errors import ErrorCode, code_info


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "AUTH_REQUIRED", ExitCode.AUTH),
        (401, "AUTH_INVALID_TOKEN", ExitCode.AUTH),
        (403, "AUTH_FORBIDDEN", ExitCode.AUTH),
        (404, "QUEUE_TASK_NOT_FOUND", ExitCode.NOT_FOUND),
        (400, "REQUEST_UNKNOWN_ACTION", ExitCode.UNSUPPORTED),
        (400, "VALIDATION_INVALID_PARAMS", ExitCode.REFUSED),
        (409, "QUEUE_TASK_FINISHED", ExitCode.REFUSED),
        (429, "QUEUE_FULL", ExitCode.REFUSED),
        (503, "QUEUE_SHUTTING_DOWN", ExitCode.REFUSED),
        (507, "SYSTEM_DISK_SPACE", ExitCode.REFUSED),
        (500, "INTERNAL_ERROR", ExitCode.AGENT_ERROR),
    ],
)
def test_each_failure_class_has_its_exit_status(status: int, code: str, expected: ExitCode) -> None:
    assert exit_code_for(status, code) is expected


def test_every_agent_code_maps_to_a_failure_class_by_its_http_status() -> None:
    """A code the agent answers with its catalogue's status never looks like success, a
    usage error or a failed task."""
    for code in ErrorCode:
        found = exit_code_for(code_info(code).http_status, code.value)
        assert found not in (ExitCode.OK, ExitCode.USAGE, ExitCode.TASK_FAILED), code


def test_the_exit_statuses_are_distinct_and_documented() -> None:
    values = [int(c) for c in ExitCode]
    assert len(values) == len(set(values))
    doc = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    for member in ExitCode:
        assert f"| {int(member)} | `{member.name}`" in doc, member


def _frames(text: str) -> list[Frame]:
    return list(frames(iter(io.BytesIO(text.encode()).readlines())))


def test_event_frames_are_dispatched_as_the_sse_specification_says() -> None:
    found = _frames(
        "retry: 2000\n\n"
        ": keep-alive\n\n"
        'id: 7\nevent: progress\ndata: {"status": "downloading",\ndata:  "progress": 40}\n\n'
        'event: reset\ndata: {"event": "reset"}\n\n'
        "data: not json\n\n"
        "id: 9\ndata: {}\n"  # no blank line: the stream ended mid-frame, nothing dispatched
    )
    assert [(f.event, f.id, f.data, f.retry_ms) for f in found] == [
        ("message", None, None, 2000),
        ("progress", "7", {"status": "downloading", "progress": 40}, None),
        ("reset", None, {"event": "reset"}, None),
        ("message", None, "not json", None),
    ]


@pytest.mark.parametrize(
    ("image", "tag", "expected"),
    [
        ("127.0.0.1:5000/team/app:1.4", None, ("127.0.0.1:5000/team/app", "1.4")),
        ("127.0.0.1:5000/team/app", None, ("127.0.0.1:5000/team/app", None)),
        ("busybox:latest", None, ("busybox", "latest")),
        ("registry:5000/app:1.4", "2.0", ("registry:5000/app:1.4", "2.0")),
        ("app@sha256:" + "a" * 64, None, ("app@sha256:" + "a" * 64, None)),
    ],
)
def test_a_reference_is_split_into_name_and_tag(
    image: str, tag: str | None, expected: tuple[str, str | None]
) -> None:
    assert split_reference(image, tag) == expected


def test_params_are_read_as_json_where_they_are_json() -> None:
    assert parse_params(["limit=10", "name=nightly", 'tags=["a"]', "on=true", "x="]) == {
        "limit": 10,
        "name": "nightly",
        "tags": ["a"],
        "on": True,
        "x": "",
    }
    with pytest.raises(CliFailure) as refused:
        parse_params(["novalue"])
    assert refused.value.exit_code is ExitCode.USAGE


def _no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    (tmp_path / "secrets").mkdir(exist_ok=True)
    monkeypatch.setenv("AI_ADMIN_SECRETS_DIR", str(tmp_path / "secrets"))


def test_the_token_comes_from_the_flag_then_the_variable_then_the_configuration_then_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_settings(monkeypatch, tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "token").write_text("from-the-token-file\n")
    config = tmp_path / "agent.toml"
    config.write_text(f'port = 9123\ndata_dir = "{data}"\n')

    by_file = resolve(None, None, config)
    assert (by_file.url, by_file.token) == ("http://127.0.0.1:9123", "from-the-token-file")
    assert by_file.token_from == f"token file {data / 'token'}"

    config.write_text(f'port = 9123\ndata_dir = "{data}"\ntoken = "from-the-configuration"\n')
    assert resolve(None, None, config).token == "from-the-configuration"

    monkeypatch.setenv("AI_ADMIN_TOKEN", "from-the-variable")
    assert resolve(None, None, config).token == "from-the-variable"
    flagged = resolve("http://agent:1/", "from-the-flag", config)
    assert (flagged.url, flagged.token, flagged.token_from) == (
        "http://agent:1",
        "from-the-flag",
        "--token",
    )
    assert "from-the-flag" not in repr(flagged)


def test_an_agent_on_every_interface_is_asked_on_loopback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("AI_ADMIN_HOST", "0.0.0.0")  # noqa: S104
    monkeypatch.setenv("AI_ADMIN_PORT", "9000")
    target = resolve(None, None, None)
    assert (target.url, target.token, target.token_from) == ("http://127.0.0.1:9000", None, "none")


def test_a_bad_configuration_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("AI_ADMIN_PORT", "many")
    with pytest.raises(CliFailure) as refused:
        resolve(None, None, None)
    assert refused.value.exit_code is ExitCode.USAGE
    assert "port = 'many'" in refused.value.message


_TASKS: dict[str, Any] = {
    "tasks": [
        {
            "id": "t-1",
            "task_type": "docker_pull",
            "status": "completed",
            "progress": 100.0,
            "current_step": "Completed successfully",
            "params": {"image_name": "127.0.0.1:5000/app", "tag": "1.4"},
            "priority": "normal",
            "queue": "default",
            "created_at": 1796180075.5,
            "error_code": None,
        },
        {
            "id": "t-2",
            "task_type": "docker_build",
            "status": "failed",
            "progress": 50.0,
            "current_step": "Failed, with a comma",
            "params": {"tags": ["app:2", "app:latest"]},
            "priority": "high",
            "queue": "default",
            "created_at": 1796180076.5,
            "error_code": "DOCKER_BUILD_FAILED",
        },
    ],
    "total": 7,
    "limit": 2,
    "offset": 0,
}


def test_tasks_print_as_json_csv_and_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    view = task_records(_TASKS)
    output.emit(_TASKS, output.Format.JSON, view)
    assert json.loads(capsys.readouterr().out) == _TASKS

    output.emit(_TASKS, output.Format.CSV, view)
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["id"], r["type"], r["status"], r["image"], r["error"]) for r in rows] == [
        ("t-1", "pull", "completed", "127.0.0.1:5000/app:1.4", ""),
        ("t-2", "build", "failed", "app:2", "DOCKER_BUILD_FAILED"),
    ]
    assert rows[1]["step"] == "Failed, with a comma"

    output.emit(_TASKS, output.Format.TABLE, view)
    table = capsys.readouterr().out
    assert "t-1" in table
    assert "DOCKER_BUILD_FAILED" in table
    assert "100%" in table
    assert "1-2 of 7; next page: --offset 2" in table


def test_without_format_a_pipe_gets_json() -> None:
    assert output.choose(None, io.StringIO()) is output.Format.JSON
    assert output.choose(output.Format.CSV, io.StringIO()) is output.Format.CSV


def test_data_of_unknown_shape_shows_its_one_list_as_rows() -> None:
    view = output.generic_view(
        {"queues": [{"name": "q", "limits": {"max_concurrent": 2}, "paused": False}], "total": 1}
    )
    assert isinstance(view, output.Records)
    assert [c.header for c in view.columns] == ["name", "limits.max_concurrent", "paused"]
    assert [c.value(view.rows[0]) for c in view.columns] == ["q", 2, False]
    assert view.footer == "total: 1"
    # In a table a time in seconds shows as a time; a number keeps its digits.
    shown = [output._shown("next_run_at", 1796180075.5), output._shown("progress", 12.25)]
    assert shown == [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1796180075.5)), "12.25"]
    fields = output.generic_view({"paused": True, "queue": {"name": "default"}})
    assert isinstance(fields, output.Fields)
    assert output.flatten(fields.values) == {"paused": True, "queue.name": "default"}


def test_a_failure_prints_its_code_message_and_suggestions_without_colour_off_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    output.print_failure(
        CliFailure("QUEUE_TASK_NOT_FOUND", "No task with id 'x'.", ExitCode.NOT_FOUND, ["Check"])
    )
    assert capsys.readouterr().err == (
        "ai-admin: QUEUE_TASK_NOT_FOUND: No task with id 'x'.\n  - Check\n"
    )


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under ``group`` (typer's own click), as the words that run it."""
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        found.append((*path, name))
        if hasattr(command, "commands"):
            found += _commands(command, (*path, name))
    return found


def test_every_command_shows_an_example_in_its_help() -> None:
    commands = _commands(typer.main.get_command(app))
    assert len(commands) > 30
    runner = CliRunner()
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Example: ai-admin" in result.output, path


def test_the_tool_formats_offered_are_the_mcp_layers() -> None:
    from ai_admin.mcp.tools import ToolFormat

    assert [f.value for f in ToolFormatChoice] == [f.value for f in ToolFormat]
