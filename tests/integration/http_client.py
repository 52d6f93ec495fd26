"""A small client for the HTTP tests: every answer is checked the way a careful client would.

``check_envelope`` is the contract of ``shared/DESIGN.md`` ("The command contract"): strict
JSON, ``success``/``action`` and either ``data`` or an ``error`` with a known code, a message,
details and suggestions, and an HTTP status that agrees with the code (a success: 200, but
202 Accepted with a ``Location`` for a REST submit). No answer ever carries a
traceback. ``Api`` keeps every answer's text, so a test can search all of them (for a canary).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ai_admin.errors import ErrorCode, code_info

DEFAULT = object()  # "use the client's token"
WAIT_S = 60.0


def _no_constants(constant: str) -> Any:
    raise AssertionError(f"the answer holds {constant}, which is not JSON")


def strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constants)


@dataclass
class Answer:
    method: str
    path: str
    status: int
    text: str
    content_type: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str | None:
        error = (self.body or {}).get("error") if isinstance(self.body, dict) else None
        return error.get("code") if isinstance(error, dict) else None

    @property
    def data(self) -> Any:
        assert isinstance(self.body, dict), self.describe()
        assert self.body.get("success") is True, self.describe()
        return self.body["data"]

    def describe(self) -> str:
        return f"{self.method} {self.path} -> {self.status}: {self.text[:1500]}"


def check_envelope(answer: Answer) -> dict[str, Any]:
    """Assert that ``answer`` is a well-formed envelope; return it."""
    where = answer.describe()
    assert "Traceback" not in answer.text, where
    assert answer.content_type == "application/json", where
    body = answer.body
    assert isinstance(body, dict), where
    assert isinstance(body.get("success"), bool), where
    assert body.get("action") is None or isinstance(body["action"], str), where
    if body["success"]:
        assert set(body) == {"success", "action", "data"}, where
        assert isinstance(body["data"], dict), where
        if (answer.method, answer.path.split("?")[0]) == ("POST", "/api/tasks"):
            # a submit: 202 Accepted, and where to follow the task (the one doing the work)
            assert answer.status == 202, where
            followed = body["data"]["merged_into"] or body["data"]["task_id"]
            assert answer.headers.get("Location") == f"/api/tasks/{followed}", where
        else:
            assert answer.status == 200, where
        return body
    assert set(body) == {"success", "action", "error"}, where
    error = body["error"]
    assert isinstance(error, dict), where
    assert set(error) == {"code", "message", "details", "suggestions"}, where
    assert error["code"] in ErrorCode.__members__, where
    assert isinstance(error["message"], str), where
    assert error["message"].strip(), where
    assert isinstance(error["details"], dict), where
    suggestions = error["suggestions"]
    assert isinstance(suggestions, list), where
    assert suggestions, where
    assert all(isinstance(s, str) and s.strip() for s in suggestions), where
    assert answer.status == code_info(ErrorCode(error["code"])).http_status, where
    return body


@dataclass
class Api:
    session: aiohttp.ClientSession
    url: str
    token: str | None
    answers: list[Answer] = field(default_factory=list)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = DEFAULT,
        data: bytes | str | None = None,
        token: Any = DEFAULT,
        headers: Mapping[str, str] | None = None,
        envelope: bool = True,
    ) -> Answer:
        """One request; with ``envelope`` the answer must be a well-formed envelope."""
        sent = dict(headers or {})
        token = self.token if token is DEFAULT else token
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if json_body is not DEFAULT:
            data = json.dumps(json_body)
            sent.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method, self.url + path, data=data, headers=sent
        ) as response:
            text = await response.text()
            answer = Answer(
                method,
                path,
                response.status,
                text,
                response.content_type,
                None,
                {**response.headers},
            )
        self.answers.append(answer)
        if answer.content_type == "application/json":
            answer.body = strict_json(text)
        if envelope:
            check_envelope(answer)
        return answer

    async def cmd(self, message: Any, *, token: Any = DEFAULT) -> Answer:
        return await self.request("POST", "/cmd", json_body=message, token=token)

    async def ok(self, action: str, /, **params: Any) -> Any:
        """Run a command that must succeed; its data."""
        answer = await self.cmd({"action": action, "params": params})
        assert answer.status == 200, answer.describe()
        return answer.data

    async def refused(self, answer: Awaitable[Answer], code: ErrorCode, status: int) -> Answer:
        got = await answer
        assert (got.status, got.code) == (status, code.value), got.describe()
        assert got.body["success"] is False
        return got

    async def task(self, task_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.ok("queue_task_status", task_id=task_id)
        return data

    async def total_tasks(self) -> int:
        stats = await self.ok("queue_status")
        return int(stats["summary"]["total_tasks"])

    async def task_ids(self) -> set[str]:
        data = await self.ok("queue_list_tasks", limit=1000)
        return {t["id"] for t in data["tasks"]}

    async def wait_for(
        self,
        task_id: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout_s: float = WAIT_S,
    ) -> dict[str, Any]:
        """Poll ``queue_task_status`` until ``predicate`` holds; fail with the last state."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = await self.task(task_id)
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} never got there; last state: {state}")
            await asyncio.sleep(0.05)  # polling with a deadline

    async def finished(self, task_id: str, timeout_s: float = WAIT_S) -> dict[str, Any]:
        finished = {"completed", "failed", "cancelled", "timeout", "merged"}
        return await self.wait_for(task_id, lambda s: s["status"]["value"] in finished, timeout_s)


# The agent closes a connection idle for request_head_timeout_s (10 s by default); a client
# that keeps idle connections longer (aiohttp's default is 15 s) may send a request on one the
# agent is closing at that moment and see "Server disconnected". Reuse only what the agent keeps.
CLIENT_KEEPALIVE_S = 5.0


def session() -> aiohttp.ClientSession:
    """A session that never goes through a proxy from the environment."""
    return aiohttp.ClientSession(
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=WAIT_S),
        connector=aiohttp.TCPConnector(keepalive_timeout=CLIENT_KEEPALIVE_S),
    )


@asynccontextmanager
async def client(url: str, token: str | None) -> AsyncIterator[Api]:
    """A client of the agent at ``url`` presenting ``token``, on a session of its own that is
    closed on exit (the ``api`` fixture of ``conftest.py`` is one)."""
    async with session() as http:
        yield Api(http, url, token)
