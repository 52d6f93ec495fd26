"""The agent's aiohttp app in-process, with settings away from their defaults: several
read-only tokens, and a body limit other than aiohttp's own ``client_max_size`` (1 MiB, equal
to the default ``max_body_bytes``, so a test at the defaults cannot tell the two apart).

The tokens come from the settings through ``load_tokens``, as ``ai-admin serve`` reads them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ai_admin.agent import Agent
from ai_admin.config import Settings
from ai_admin.errors import ErrorCode
from ai_admin.http.app import create_app
from ai_admin.http.auth import load_tokens
from ai_admin.python_api import TaskQueue
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskType

OPERATOR = "operator-token-0"
READERS = ("reader-token-one", "reader-token-two", "reader-token-three")
AIOHTTP_MAX_SIZE = 1024**2  # aiohttp's default client_max_size
STATUS = {"action": "queue_status"}


async def _never_runs(ctx: TaskContext) -> dict[str, Any]:
    raise AssertionError("no test here runs a task")


@asynccontextmanager
async def _client(tmp_path: Path, **options: Any) -> AsyncIterator[TestClient[Any, Any]]:
    settings = Settings(
        data_dir=tmp_path,
        token=OPERATOR,
        read_only_tokens=list(READERS),
        shutdown_grace_s=0.2,
        **options,
    )
    tokens, generated = load_tokens(settings)
    assert not generated
    executors = dict.fromkeys(TaskType, _never_runs)
    agent = Agent(settings, TaskQueue(executors=executors, settings=settings))
    await agent.queue.start()
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(agent, tokens)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await agent.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


async def _answer(response: Any) -> tuple[int, dict[str, Any]]:
    body = await response.json()
    assert isinstance(body, dict)
    return response.status, body


# -- read-only tokens ---------------------------------------------------------------------------


async def test_every_read_only_token_may_read_and_none_may_write(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        for token in READERS:
            status, body = await _answer(await client.get("/api/stats", headers=_bearer(token)))
            assert (status, body["success"]) == (200, True), (token, body)
            status, body = await _answer(
                await client.post("/cmd", data=json.dumps(STATUS), headers=_bearer(token))
            )
            assert (status, body["success"]) == (200, True), (token, body)

            for method, path, message in [
                ("POST", "/cmd", {"action": "queue_pause"}),
                ("POST", "/api/tasks", {"task_type": "docker_pull", "params": {"image_name": "a"}}),
            ]:
                response = await client.request(
                    method, path, data=json.dumps(message), headers=_bearer(token)
                )
                status, body = await _answer(response)
                assert status == 403, (token, path, body)
                assert body["error"]["code"] == ErrorCode.AUTH_FORBIDDEN.value

        stats = await client.get("/api/stats", headers=_bearer(OPERATOR))
        _, body = await _answer(stats)
        assert body["data"]["queue"]["paused"] is False  # no refused write happened
        assert body["data"]["summary"]["total_tasks"] == 0


async def test_the_operator_token_may_write(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        pause = json.dumps({"action": "queue_pause"})
        status, body = await _answer(
            await client.post("/cmd", data=pause, headers=_bearer(OPERATOR))
        )
        assert (status, body["success"]) == (200, True), body
        _, body = await _answer(await client.get("/api/stats", headers=_bearer(READERS[-1])))
        assert body["data"]["queue"]["paused"] is True


@pytest.mark.parametrize(
    "token", ["not-a-token-at-all", READERS[0] + "x", READERS[1][:-1], OPERATOR.upper()]
)
async def test_a_token_close_to_a_valid_one_is_refused(tmp_path: Path, token: str) -> None:
    async with _client(tmp_path) as client:
        status, body = await _answer(await client.get("/api/stats", headers=_bearer(token)))
        assert status == 401
        assert body["error"]["code"] == ErrorCode.AUTH_INVALID_TOKEN.value


# -- the body limit -----------------------------------------------------------------------------


def _padded(message: dict[str, Any], size: int) -> bytes:
    """``message`` as JSON followed by spaces, exactly ``size`` bytes long (still valid JSON)."""
    raw = json.dumps(message).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


LIMITS = [
    pytest.param(2048, id="below-aiohttp-default"),
    pytest.param(AIOHTTP_MAX_SIZE * 2, id="above-aiohttp-default"),
]


@pytest.mark.parametrize("limit", LIMITS)
async def test_a_body_at_max_body_bytes_is_accepted(tmp_path: Path, limit: int) -> None:
    async with _client(tmp_path, max_body_bytes=limit) as client:
        body = _padded(STATUS, limit)
        status, answer = await _answer(
            await client.post("/cmd", data=body, headers=_bearer(OPERATOR))
        )
        assert (status, answer["success"]) == (200, True), answer.get("error")


Route = tuple[str, Callable[[int], bytes]]
ROUTES: list[Route] = [
    ("/cmd", lambda size: _padded(STATUS, size)),
    ("/api/tasks", lambda size: _padded({"task_type": "docker_pull", "params": {}}, size)),
    ("/mcp", lambda size: _padded({"jsonrpc": "2.0", "id": 1, "method": "ping"}, size)),
]


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize(("path", "body_of"), ROUTES, ids=[p for p, _ in ROUTES])
async def test_a_body_one_byte_over_max_body_bytes_is_refused_with_413(
    tmp_path: Path, limit: int, path: str, body_of: Callable[[int], bytes]
) -> None:
    async with _client(tmp_path, max_body_bytes=limit) as client:
        headers = {**_bearer(OPERATOR), "Accept": "application/json, text/event-stream"}
        response = await client.post(path, data=body_of(limit + 1), headers=headers)
        status, answer = await _answer(response)
        assert status == web.HTTPRequestEntityTooLarge.status_code, answer
        assert answer["success"] is False
        assert answer["error"]["code"] == ErrorCode.REQUEST_TOO_LARGE.value
        assert answer["error"]["details"] == {"max_body_bytes": limit}
        stats = await client.get("/api/stats", headers=_bearer(OPERATOR))
        assert (await stats.json())["data"]["summary"]["total_tasks"] == 0


# -- JSON numbers ---------------------------------------------------------------------------


async def test_an_integral_number_is_an_integer_as_json_schema_counts_it(tmp_path: Path) -> None:
    """Schemathesis found it: max_retries 15.0 is an integer to JSON Schema (and so to the
    OpenAPI document), and the agent refused it as a float."""
    async with _client(tmp_path) as client:
        for limit, accepted in ((5.0, True), (5e0, True), (5, True), (5.5, False)):
            message = {"action": "queue_list_tasks", "params": {"limit": limit}}
            status, body = await _answer(
                await client.post("/cmd", data=json.dumps(message), headers=_bearer(OPERATOR))
            )
            assert body["success"] is accepted, (limit, body)
            if accepted:
                assert (status, body["data"]["limit"]) == (200, 5)
        configure = {
            "action": "queue_configure",
            "params": {"retry_factor": 3, "retry_cap_s": 600.0},
        }
        status, body = await _answer(
            await client.post("/cmd", data=json.dumps(configure), headers=_bearer(OPERATOR))
        )
        assert (status, body["data"]["settings"]["retry_cap_s"]) == (200, 600.0), body
