"""No secret in any log line, whatever fails, in both formats; no secret in any repr.

Each test sets up the agent's logging on its own stream and restores the process's logging
afterwards. Secrets are distinct canaries, so a hit names the path that leaked.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.http_exceptions import BadHttpMessage
from loguru import logger

import ai_admin.logging as agent_logging
from ai_admin.agent import Agent
from ai_admin.commands import Dispatcher
from ai_admin.commands.registry import Registry
from ai_admin.config import Settings
from ai_admin.docker.params import BuildParams, PushParams
from ai_admin.errors import ErrorCode
from ai_admin.http.auth import Tokens
from ai_admin.logging import REDACTED, hide, redact, setup_logging
from ai_admin.queue.models import DockerTask, TaskType

FORMATS = ["text", "json"]
LOCAL_SECRET = "canary-local-variable-3c1e"
TOKEN = "canary-hidden-token-8a2f"
Logs = Callable[[str], io.StringIO]


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Logs]:
    """``logs(fmt)``: the agent's logging, at TRACE, into a fresh buffer; afterwards the
    process logs as before (loguru's default sink, the standard library's handlers)."""
    monkeypatch.setattr(agent_logging, "_hidden", ())
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # setup_logging quiets these; later tests (caplog among them) expect them as they were.
    touched = [logging.getLogger(n) for n in ("urllib3", "docker", "asyncio", "aiohttp.access")]
    states = [(x.level, x.disabled) for x in touched]

    def start(fmt: str) -> io.StringIO:
        buffer = io.StringIO()
        setup_logging("TRACE", cast(Any, fmt), buffer)
        return buffer

    yield start
    logger.remove()
    logger.add(sys.stderr)
    root.handlers[:], root.level = handlers, level
    for named, (named_level, disabled) in zip(touched, states, strict=True):
        named.setLevel(named_level)
        named.disabled = disabled


def _fails_holding_a_secret() -> None:
    password = LOCAL_SECRET  # a local variable of a frame on the way
    _refuse(password)


def _refuse(value: str) -> None:
    raise ValueError(f"cannot use the credentials ({len(value)} characters)")


def _lines(buffer: io.StringIO, fmt: str) -> list[Any]:
    text = buffer.getvalue()
    if fmt == "text":
        return text.splitlines()
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_traceback_shows_code_but_no_variable_values(logs: Logs, fmt: str) -> None:
    buffer = logs(fmt)
    try:
        _fails_holding_a_secret()
    except ValueError:
        logger.exception("the operation failed")
    try:
        _fails_holding_a_secret()
    except ValueError:
        logging.getLogger("docker.api").error("a library failed", exc_info=True)
    out = buffer.getvalue()
    assert LOCAL_SECRET not in out
    assert out.count("in _fails_holding_a_secret") == 2  # the frames are there...
    why = "ValueError: cannot use the credentials (26 characters)"
    assert out.count(why) == (2 if fmt == "text" else 4)  # and why (json: exception, traceback)
    if fmt == "json":
        assert all("traceback" in line for line in _lines(buffer, fmt)[:2])


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_failing_command_logs_its_traceback_without_the_params(
    logs: Logs, fmt: str
) -> None:
    # The original leak: an unexpected error inside a submit printed the dispatcher's locals,
    # the client's params with the registry password among them.
    buffer = logs(fmt)
    registry = Registry()

    @registry.command("docker_push", PushParams)
    async def explode(agent: Agent, p: PushParams) -> dict[str, Any]:
        """Fails holding the credentials."""
        assert p.auth is not None
        assert p.auth.password is not None
        password = p.auth.password.get_secret_value()
        raise OSError(f"disk trouble after {len(password)} bytes")

    dispatcher = Dispatcher(cast(Agent, object()), registry)
    params = {"image_name": "x/y", "auth": {"username": "u", "password": LOCAL_SECRET}}
    reply = await dispatcher.dispatch({"action": "docker_push", "params": params})
    assert reply.envelope["error"]["code"] == ErrorCode.INTERNAL_ERROR
    out = buffer.getvalue()
    assert "command docker_push failed" in out
    assert "in explode" in out
    assert LOCAL_SECRET not in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_hidden_values_never_reach_a_line(logs: Logs, fmt: str) -> None:
    buffer = logs(fmt)
    hide(TOKEN, "short")  # too short to hide: left alone
    logger.bind(header=f"Bearer {TOKEN}").info("presented {}", TOKEN)
    try:
        raise PermissionError(f"refused {TOKEN}")
    except PermissionError:
        logger.exception("refused")
    logger.info("a short word")
    out = buffer.getvalue()
    assert TOKEN not in out
    assert out.count(REDACTED) == (2 if fmt == "text" else 4)  # json: the extra, the traceback
    assert "a short word" in out
    if fmt == "json":
        first = _lines(buffer, fmt)[0]
        assert first["message"] == f"presented {REDACTED}"
        assert first["header"] == f"Bearer {REDACTED}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_http_parser_error_is_logged_without_the_request(logs: Logs, fmt: str) -> None:
    # aiohttp quotes the refused header line in the exception (a bearer token, a wrong one
    # the agent cannot hide by value): the line keeps the type and status only.
    buffer = logs(fmt)
    presented = "canary-presented-by-a-client"
    error = BadHttpMessage(f"Invalid header value char:\n  b'Authorization: Bearer {presented}'")
    try:
        raise error
    except BadHttpMessage:
        logging.getLogger("aiohttp.server").exception("Error handling request from %s", "1.2.3.4")
    out = buffer.getvalue()
    assert presented not in out
    assert "Error handling request from 1.2.3.4: BadHttpMessage 400" in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_text_that_is_not_unicode_does_not_break_the_sink(
    logs: Logs, fmt: str, tmp_path: Path
) -> None:
    path = tmp_path / "agent.log"
    with path.open("w", encoding="utf-8") as stream:  # strict, as a real log file is
        logs(fmt)
        setup_logging("INFO", cast(Any, fmt), stream)
        logger.info("unknown action {}", "x\ud800y")
        logger.info("the next line")
    text = path.read_text(encoding="utf-8")
    assert "x\\ud800y" in text
    assert "the next line" in text


def test_redact_replaces_longest_first() -> None:
    hide("canary-abcdef", "canary-abcdef-longer")
    try:
        assert redact("a canary-abcdef-longer b canary-abcdef") == f"a {REDACTED} b {REDACTED}"
    finally:
        agent_logging._hidden = ()


def test_no_repr_shows_a_secret() -> None:
    auth = {"username": "u", "password": LOCAL_SECRET, "registry": f"https://u:{TOKEN}@r.io"}
    build_args = {"NPM_TOKEN": LOCAL_SECRET, "PLAIN": "visible"}
    objects: list[object] = [
        Tokens(TOKEN, (LOCAL_SECRET,)),
        Settings(token=TOKEN, read_only_tokens=[LOCAL_SECRET], data_dir=Path("/nonexistent")),
        PushParams(image_name="x/y", auth=auth),
        BuildParams(dockerfile="FROM x", build_args=build_args),
        DockerTask(task_type=TaskType.BUILD, params={"auth": auth, "build_args": build_args}),
    ]
    for thing in objects:
        for shown in (repr(thing), str(thing), f"{thing!r:>10}"):
            assert LOCAL_SECRET not in shown, shown
            assert TOKEN not in shown, shown
    assert "visible" in repr(objects[3])


def test_the_package_is_silent_as_a_library_until_a_program_sets_up_its_log() -> None:
    """loguru's default sink shows variable values in tracebacks: a program using the Python
    API gets no line from ai-admin unless it turns the log on."""
    code = (
        "import sys\n"
        "from loguru import logger\n"
        "import ai_admin\n"
        "package = {'__name__': 'ai_admin.queue.engine', 'logger': logger}\n"
        "exec(\"logger.opt(exception=ValueError('x')).error('from the package')\", package)\n"
        "logger.error('from the program')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "from the program" in result.stderr
    assert "from the package" not in result.stderr


def test_the_json_sink_hides_a_token_that_json_would_escape(logs: Logs) -> None:
    # Regression: the JSON line was redacted after encoding, where "ö" is "\u00f6".
    token = 'tökén-"quoted"-canary'
    buffer = logs("json")  # and the process's logging as it was afterwards
    agent_logging.hide(token)
    logger.info("presented {}", token)
    line = json.loads(buffer.getvalue())
    assert line["message"] == "presented ***"


def test_bound_fields_are_json_fields(logs: Logs) -> None:
    buffer = logs("json")
    with logger.contextualize(task_id="task-1", task_type="docker_pull"):
        logger.bind(error_code="DOCKER_NETWORK_ERROR").warning("task task-1 failed")
    logger.info("no task here")
    told, after = _lines(buffer, "json")
    assert told["task_id"] == "task-1"
    assert told["task_type"] == "docker_pull"
    assert told["error_code"] == "DOCKER_NETWORK_ERROR"
    assert "task_id" not in after


@pytest.mark.parametrize("fmt", FORMATS)
def test_aiohttp_access_log_with_its_query_string_is_off(logs: Logs, fmt: str) -> None:
    buffer = logs(fmt)
    logging.getLogger("aiohttp.access").info('"GET /api/tasks?token=%s HTTP/1.1" 200', TOKEN)
    assert buffer.getvalue() == ""
