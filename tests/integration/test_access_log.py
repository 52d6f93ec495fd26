"""One access line per HTTP request, in both log formats, and never a credential in it.

Requests go to the real app on a real socket (``serve_agent``) carrying canaries where
clients put credentials: the bearer token (a valid one and a wrong one), HTTP Basic, the
query string, a registry password in the body. None of them is a token the log knows to hide
(``ai_admin.logging.hide`` is never called here), so a canary found in the log is a leak of
the access line itself (or of another line), not something the sink would have masked.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from http_client import client
from inprocess_agent import serve_agent
from loguru import logger

import ai_admin.logging as agent_logging
from ai_admin.http.auth import Tokens
from ai_admin.logging import setup_logging

OPERATOR = "canary-operator-token-71c4e0"
READER = "canary-reader-token-0b9d22"
WRONG = "canary-wrong-token-5e18aa"
BASIC_PASSWORD = "canary-basic-password-c3d7"
QUERY_SECRET = "canary-query-secret-94f1"
REGISTRY_PASSWORD = "canary-registry-password-2a6b"
CANARIES = (OPERATOR, READER, WRONG, BASIC_PASSWORD, QUERY_SECRET, REGISTRY_PASSWORD)
ACCESS_LOGGER = "ai_admin.http.access_log"
Logs = Callable[[str, str], io.StringIO]


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Logs]:
    """``logs(fmt, level)``: the agent's logging into a fresh buffer; restored afterwards."""
    monkeypatch.setattr(agent_logging, "_hidden", ())  # nothing masked: every leak shows
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # setup_logging quiets these; later tests (caplog among them) expect them as they were.
    touched = [logging.getLogger(n) for n in ("urllib3", "docker", "asyncio", "aiohttp.access")]
    states = [(x.level, x.disabled) for x in touched]

    def start(fmt: str, level: str) -> io.StringIO:
        buffer = io.StringIO()
        setup_logging(level, cast(Any, fmt), buffer)
        return buffer

    yield start
    logger.remove()
    logger.add(sys.stderr)
    root.handlers[:], root.level = handlers, level
    for named, (named_level, disabled) in zip(touched, states, strict=True):
        named.setLevel(named_level)
        named.disabled = disabled


async def _requests(data_dir: Path) -> list[tuple[str, str, int, str]]:
    """Requests with canaries in every place a credential goes; returns (method, path,
    status, role) as each access line should tell it."""
    tokens = Tokens(OPERATOR, (READER,))
    basic = base64.b64encode(f"user:{BASIC_PASSWORD}".encode()).decode()
    async with serve_agent(data_dir, tokens=tokens) as served:
        async with client(served.url, OPERATOR) as api:
            pull = await api.ok(
                "docker_pull",
                image_name="canaries",
                tag="1",
                auth={"username": "u", "password": REGISTRY_PASSWORD},
            )
            await api.finished(pull["task_id"])
            listed = await api.request("GET", "/api/tasks?limit=5")
            refused = await api.request("GET", f"/api/tasks?limit=5&token={QUERY_SECRET}")
            wrong = await api.request("GET", "/api/stats", token=WRONG)
            as_basic = await api.request(
                "GET", "/api/stats", token=None, headers={"Authorization": f"Basic {basic}"}
            )
            health = await api.request("GET", f"/health?password={QUERY_SECRET}", envelope=False)
        async with client(served.url, READER) as reader:
            stats = await reader.request("GET", "/api/stats")
    statuses = [r.status for r in (listed, refused, wrong, as_basic, health, stats)]
    assert statuses == [200, 400, 401, 401, 200, 200]
    # Before these: the submit (POST /cmd) and the reads that waited for the task's end.
    return [
        ("GET", "/api/tasks", 200, "operator"),
        ("GET", "/api/tasks", 400, "operator"),  # no such parameter: token
        ("GET", "/api/stats", 401, "-"),
        ("GET", "/api/stats", 401, "-"),
        ("GET", "/health", 200, "-"),
        ("GET", "/api/stats", 200, "read-only"),
    ]


def _access_lines_json(buffer: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == ACCESS_LOGGER]


def _no_canary(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"{canary} is in the log"


async def test_json_access_lines_have_the_fields_and_no_credential(
    logs: Logs, tmp_path: Path
) -> None:
    buffer = logs("json", "DEBUG")
    expected = await _requests(tmp_path / "data")

    _no_canary(buffer.getvalue())
    lines = _access_lines_json(buffer)
    told = [(x["method"], x["path"], x["status"], x["role"]) for x in lines]
    it = iter(told)
    assert all(e in it for e in expected), told  # in this order, among the task's polls
    submit = lines[0]
    assert (submit["method"], submit["path"], submit["status"]) == ("POST", "/cmd", 200)
    for line in lines:
        assert set(line) >= {"client", "role", "method", "path", "status", "bytes", "duration_ms"}
        assert line["client"] == "127.0.0.1"
        assert "?" not in line["path"]
        assert "?" not in line["message"]
        assert line["duration_ms"] >= 0
        assert line["level"] == ("DEBUG" if line["path"] == "/health" else "INFO")
    assert all(line["bytes"] > 0 for line in lines)  # every answer here has a body
    listed = next(x for x in lines if x["path"] == "/api/tasks" and x["status"] == 200)
    assert listed["bytes"] > 100


async def test_text_access_lines_read_as_one_line_per_request(logs: Logs, tmp_path: Path) -> None:
    buffer = logs("text", "INFO")
    await _requests(tmp_path / "data")

    text = buffer.getvalue()
    _no_canary(text)
    lines = [line for line in text.splitlines() if f" {ACCESS_LOGGER} " in line]
    assert any('127.0.0.1 operator "GET /api/tasks" 200 ' in line for line in lines), lines
    assert sum('- "GET /api/stats" 401 ' in line for line in lines) == 2
    assert any('127.0.0.1 read-only "GET /api/stats" 200 ' in line for line in lines)
    assert not any("/health" in line for line in lines)  # DEBUG: not at INFO
    assert all(line.rstrip().endswith(" ms") for line in lines)
