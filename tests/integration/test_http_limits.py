"""Slow and greedy clients against real agents: the request-head timeout, the connection cap
under a low descriptor limit, per-token limits on event streams and MCP sessions, Host and
Origin checks, and listings bounded in bytes with paging."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from agent_process import OPERATOR_TOKEN, READ_ONLY_TOKEN, AgentProcess, launch, serving
from http_client import Answer, Api, check_envelope, client, strict_json
from mcp_messages import ACCEPT, INITIALIZE

from ai_admin.errors import ErrorCode

pytestmark = pytest.mark.docker

ALLOWED_HOST = "agent.example.org"
ALLOWED_ORIGIN = "https://dash.example.org"
ANSWER_BYTES = 65_536  # the smallest max_answer_bytes the settings accept
DEADLINE_S = 30.0  # what "never" looks like to these tests
# The agent as `ai-admin serve` runs, with its descriptor limit lowered first (soft and hard).
LIMITED_COMMAND = [
    sys.executable,
    "-c",
    "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
    "from ai_admin.cli.main import app; app()",
]


@pytest.fixture(scope="module")
def agent_options() -> dict[str, Any]:
    env = {
        "AI_ADMIN_MAX_EVENT_STREAMS_PER_TOKEN": "2",
        "AI_ADMIN_MAX_MCP_SESSIONS_PER_TOKEN": "2",
        "AI_ADMIN_MAX_ANSWER_BYTES": str(ANSWER_BYTES),
        "AI_ADMIN_ALLOWED_HOSTS": json.dumps([ALLOWED_HOST]),
        "AI_ADMIN_ALLOWED_ORIGINS": json.dumps([ALLOWED_ORIGIN]),
    }
    return {"env": env}


def address(agent: AgentProcess) -> tuple[str, int]:
    host, port = agent.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def closed_by_peer(sock: socket.socket, wait_s: float) -> bool:
    """True once the agent has closed ``sock`` (within ``wait_s``)."""
    readable, _, _ = select.select([sock], [], [], wait_s)
    if not readable:
        return False
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def get_health(host: str, port: int, timeout_s: float) -> bytes:
    """``GET /health`` on a new connection; the status line."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return sock.makefile("rb").readline()


# -- slow clients ------------------------------------------------------------------------------


def test_a_silent_connection_and_a_head_or_body_sent_a_byte_at_a_time_are_closed(
    tmp_path: Path,
) -> None:
    env = {"AI_ADMIN_REQUEST_HEAD_TIMEOUT_S": "1"}
    with serving(tmp_path / "data", env=env) as running:
        host, port = address(running)
        with socket.create_connection((host, port)) as silent:
            assert closed_by_peer(silent, DEADLINE_S)
        # A head that would take 60 s to finish: the agent must close it long before.
        head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 300
        sent = 0
        with socket.create_connection((host, port)) as slow:
            while sent < len(head) and not closed_by_peer(slow, 0.2):  # a byte every 0.2 s
                slow.send(head[sent : sent + 1])
                sent += 1
            assert sent < len(head), "the agent kept a trickling request head open"
        # A whole head, then a body that would take 60 s: answered, and the connection closed.
        head = (
            f"POST /cmd HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {READ_ONLY_TOKEN}"
            "\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n"
        ).encode()
        with socket.create_connection((host, port)) as slow:
            slow.sendall(head)
            sent = 0
            while sent < 300 and not select.select([slow], [], [], 0.2)[0]:
                slow.send(b" ")
                sent += 1
            assert sent < 300, "the agent kept a trickling body open"
            answer = slow.makefile("rb").read()
        assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
        assert b"REQUEST_INVALID_MESSAGE" in answer
        assert b"did not arrive within 1 s" in answer
        assert get_health(host, port, DEADLINE_S).startswith(b"HTTP/1.1 200")


def test_idle_sockets_past_the_descriptor_limit_leave_health_answering(tmp_path: Path) -> None:
    """300 idle connections against an agent allowed 256 descriptors (head timeout 10 s, the
    default): the cap keeps descriptors for the database and Docker, the timeout frees the
    slots, and ``/health`` answers within 15 s."""
    running = launch(tmp_path / "data", command=LIMITED_COMMAND)
    try:
        host, port = address(running)
        idle = [socket.create_connection((host, port)) for _ in range(300)]
        try:
            assert get_health(host, port, 15.0).startswith(b"HTTP/1.1 200")
            with socket.create_connection((host, port), timeout=DEADLINE_S) as sock:
                body = json.dumps({"action": "queue_status"}).encode()
                head = (
                    "POST /cmd HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    f"Authorization: Bearer {OPERATOR_TOKEN}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                sock.sendall(head.encode() + body)
                assert sock.makefile("rb").readline().startswith(b"HTTP/1.1 200")
        finally:
            for sock in idle:
                sock.close()
    finally:
        assert running.stop() == 0, running.stderr()[-3000:]
    assert "serving at most 192 connections at once" in running.stderr()
    assert "Traceback" not in running.stderr()


def test_clients_that_never_read_their_answers_do_not_lock_others_out(tmp_path: Path) -> None:
    """Every connection the agent serves asks for large answers and reads none: the answers
    stop moving, those connections are aborted once they have not moved for the head
    timeout, and ``/health`` answers again."""
    env = {"AI_ADMIN_MAX_CONNECTIONS": "8", "AI_ADMIN_REQUEST_HEAD_TIMEOUT_S": "2"}
    with serving(tmp_path / "data", env=env) as running:
        host, port = address(running)
        request = (
            f"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {READ_ONLY_TOKEN}\r\n\r\n"
        ).encode()
        greedy = []
        for _ in range(8):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((host, port))
            sock.setblocking(False)
            greedy.append(sock)
        try:
            for _ in range(400):  # pipelined, never read: far more than the socket buffers
                for sock in greedy:
                    with contextlib.suppress(BlockingIOError):
                        sock.send(request)
            assert get_health(host, port, DEADLINE_S).startswith(b"HTTP/1.1 200")
        finally:
            for sock in greedy:
                sock.close()
    assert "closing a connection whose client stopped reading" in running.output()


# -- greedy clients ----------------------------------------------------------------------------


async def open_stream(api: Api, token: str) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"Bearer {token}"}
    return await api.session.get(f"{api.url}/api/events", headers=headers)


async def refused_answer(response: aiohttp.ClientResponse, code: ErrorCode) -> Answer:
    text = await response.text()
    answer = Answer("GET", str(response.url.path), response.status, text, response.content_type)
    answer.body = strict_json(text)
    check_envelope(answer)
    assert answer.code == code.value, answer.describe()
    return answer


async def test_event_streams_per_token_are_limited_and_freed_when_one_closes(api: Api) -> None:
    streams = [await open_stream(api, READ_ONLY_TOKEN) for _ in range(2)]
    assert [s.status for s in streams] == [200, 200]
    third = await open_stream(api, READ_ONLY_TOKEN)
    answer = await refused_answer(third, ErrorCode.REQUEST_LIMIT_REACHED)
    assert answer.status == 429
    assert answer.body["error"]["details"] == {
        "limit": 2,
        "setting": "max_event_streams_per_token",
    }
    other = await open_stream(api, OPERATOR_TOKEN)  # the limit is per token
    assert other.status == 200
    other.close()
    streams.pop().close()
    deadline = time.monotonic() + DEADLINE_S
    while (again := await open_stream(api, READ_ONLY_TOKEN)).status != 200:
        await refused_answer(again, ErrorCode.REQUEST_LIMIT_REACHED)
        assert time.monotonic() < deadline, "a closed stream still holds its slot"
    again.close()
    for stream in streams:
        stream.close()


def session_id(answer: Answer) -> str:
    return next(v for k, v in answer.headers.items() if k.lower() == "mcp-session-id")


async def end_session(api: Api, opened: Answer) -> int:
    """DELETE the session ``opened`` started (its answer has no body); the status."""
    headers = {"Authorization": f"Bearer {api.token}", "Mcp-Session-Id": session_id(opened)}
    async with api.session.delete(f"{api.url}/mcp", headers=headers) as response:
        return response.status


async def mcp_post(api: Api, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return await api.request(
        "POST", "/mcp", json_body=body, headers={**ACCEPT, **(headers or {})}, envelope=False
    )


async def test_mcp_sessions_per_token_are_limited_and_freed_when_one_ends(api: Api) -> None:
    opened = [await mcp_post(api, INITIALIZE) for _ in range(2)]
    assert [o.status for o in opened] == [200, 200], opened[0].describe()
    refused = await mcp_post(api, INITIALIZE)
    check_envelope(refused)
    assert (refused.status, refused.code) == (429, ErrorCode.REQUEST_LIMIT_REACHED.value)
    assert refused.body["error"]["details"]["setting"] == "max_mcp_sessions_per_token"
    reader = Api(api.session, api.url, READ_ONLY_TOKEN)
    theirs = await mcp_post(reader, INITIALIZE)
    assert theirs.status == 200  # the limit is per token
    assert await end_session(api, opened.pop(0)) == 200
    opened.append(await mcp_post(api, INITIALIZE))
    assert opened[-1].status == 200
    for answer in opened:  # the other tests open sessions with these tokens too
        assert await end_session(api, answer) == 200
    assert await end_session(reader, theirs) == 200


# -- Host and Origin ---------------------------------------------------------------------------

GUARDED: list[tuple[str, str, Any]] = [
    ("GET", "/health", None),
    ("POST", "/cmd", {"action": "queue_status"}),
    ("GET", "/api/events", None),
    ("POST", "/mcp", INITIALIZE),
]


async def send(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> Answer:
    """One request; an MCP session it opens is ended again, so none count against the limit."""
    if path != "/mcp":
        if body is None:
            return await api.request(method, path, headers=headers, envelope=False)
        return await api.request(method, path, json_body=body, headers=headers, envelope=False)
    answer = await mcp_post(api, body, headers)
    if answer.status == 200:
        assert await end_session(api, answer) == 200
    return answer


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
async def test_a_foreign_host_is_refused_and_a_configured_one_allowed(
    api: Api, agent: AgentProcess, method: str, path: str, body: Any
) -> None:
    port = address(agent)[1]
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "[::2]"):
        answer = await send(api, method, path, body, {"Host": host})
        check_envelope(answer)
        assert (answer.status, answer.code) == (400, "REQUEST_HOST_NOT_ALLOWED"), host
    if path == "/api/events":
        return  # a stream that would stay open; allowed hosts reach it in the test above
    for host in (ALLOWED_HOST, f"{ALLOWED_HOST.upper()}:{port}", f"localhost:{port}", "[::1]"):
        answer = await send(api, method, path, body, {"Host": host})
        assert answer.status == 200, f"{host}: {answer.describe()}"


def test_a_refused_host_is_echoed_as_text_any_json_parser_reads(agent: AgentProcess) -> None:
    # Regression: bytes that are not UTF-8 came back as lone surrogates ("\udcff"), which
    # strict JSON parsers refuse.
    host, port = address(agent)
    with socket.create_connection((host, port), timeout=DEADLINE_S) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: \xff\xfeevil\r\nConnection: close\r\n\r\n")
        answer = sock.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    text = body.decode("utf-8")  # strictly: a lone surrogate cannot be encoded at all
    error = strict_json(text)["error"]
    assert error["code"] == "REQUEST_HOST_NOT_ALLOWED"
    assert error["details"]["host"] == "\\udcff\\udcfeevil"


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
async def test_a_foreign_origin_is_refused_and_a_configured_one_allowed(
    api: Api, method: str, path: str, body: Any
) -> None:
    for origin in ("http://evil.example", "null", "https://dash.example.org.evil.example"):
        answer = await send(api, method, path, body, {"Origin": origin})
        check_envelope(answer)
        assert (answer.status, answer.code) == (403, "REQUEST_ORIGIN_NOT_ALLOWED"), origin
    if path == "/api/events":
        return
    answer = await send(api, method, path, body, {"Origin": ALLOWED_ORIGIN})
    assert answer.status == 200, answer.describe()


# -- answers bounded in bytes ------------------------------------------------------------------


async def test_export_and_listings_are_bounded_and_paging_returns_every_task_once(
    api: Api,
) -> None:
    await api.ok("queue_pause")  # the builds wait: only their records matter here
    submitted = set()
    for _ in range(24):  # ~12 KB each: about 5 fit in one answer
        dockerfile = f"FROM scratch\nLABEL id={uuid.uuid4().hex}\n" + "# padding\n" * 1200
        submitted.add((await api.ok("docker_build", dockerfile=dockerfile))["task_id"])
    try:
        for command in ("queue_export", "queue_list_tasks"):
            pages = await pages_of(api, command)
            assert len(pages) > 4
            ids = [t["id"] for page in pages for t in page[command_key(command)]]
            assert len(ids) == len(set(ids)), f"{command}: a task came twice"
            assert submitted <= set(ids), f"{command}: a task never came"
        listed = await api.request("GET", "/api/tasks?limit=1000")
        assert len(listed.text) <= ANSWER_BYTES
        assert listed.data["truncated"] is True
        status = await api.request(
            "POST", "/cmd", json_body={"action": "queue_status", "params": {"detailed": True}}
        )
        assert len(status.text) <= ANSWER_BYTES
        assert status.data["truncated"] is True
        assert "queue_list_tasks" in status.data["note"]
    finally:
        for task_id in submitted:
            await api.request("POST", f"/api/tasks/{task_id}/cancel")
        await api.ok("queue_resume")


def command_key(command: str) -> str:
    return "jobs" if command == "queue_export" else "tasks"


async def pages_of(api: Api, command: str) -> list[dict[str, Any]]:
    """Every page of ``command``, following next_offset; each within the byte bound."""
    pages: list[dict[str, Any]] = []
    offset = 0
    while True:
        params = {"limit": 1000, "offset": offset}
        if command == "queue_export":
            params["what"] = "jobs"
        answer = await api.cmd({"action": command, "params": params})
        assert len(answer.text) <= ANSWER_BYTES, f"{command} at {offset}: {len(answer.text)} B"
        page = answer.data
        pages.append(page)
        if not page.get("truncated"):
            return pages
        assert page["next_offset"] == offset + len(page[command_key(command)])
        assert f"offset {page['next_offset']}" in page["note"]
        offset = page["next_offset"]


async def test_on_every_interface_any_host_is_served_unless_names_are_configured(
    tmp_path: Path,
) -> None:
    """0.0.0.0 cannot know the names clients use: with allowed_hosts empty the agent accepts
    any Host and says so in its log; with names configured it accepts only those (and the
    loopback names)."""
    wildcard = "0.0.0.0"  # noqa: S104 - the point of the test
    with serving(tmp_path / "open", host=wildcard) as running:
        async with client(running.url, OPERATOR_TOKEN) as api:
            answer = await send(api, "GET", "/health", None, {"Host": "agent.lan:8060"})
            assert answer.status == 200, answer.describe()
        assert "the Host header is not checked" in running.stderr()
    env = {"AI_ADMIN_ALLOWED_HOSTS": json.dumps(["agent.lan"])}
    with serving(tmp_path / "named", host=wildcard, env=env) as running:
        async with client(running.url, OPERATOR_TOKEN) as api:
            assert (await send(api, "GET", "/health", None, {"Host": "agent.lan"})).status == 200
            assert (await send(api, "GET", "/health", None, {"Host": "localhost"})).status == 200
            refused = await send(api, "GET", "/health", None, {"Host": "other.lan"})
            assert (refused.status, refused.code) == (400, "REQUEST_HOST_NOT_ALLOWED")
        assert "the Host header is not checked" not in running.stderr()
