"""The credential canary: known secrets driven through every error path a real agent can reach,
then searched for in everything the agent wrote or said.

One agent process per log format (text, json) runs with a known operator token and read-only
token. The scenario sends malformed ``Authorization`` headers (bad bytes, control characters,
huge values, wrong tokens), bad params (NUL bytes, lone surrogates, wrong types) with secrets
beside them, real pulls and pushes refused by the htpasswd registry, an identity token, builds
with a build arg named like a secret (one whose ``RUN`` fails, one that succeeds), a registry URL
with ``user:password@``, a forced internal error in a handler holding credentials, and a SIGTERM
while a build runs; then the agent is started again on the same data. Afterwards none of the
canaries may be in the log, the database files (raw bytes, WAL included, read while the agent
runs and after it stopped), any HTTP answer, the event stream, MCP output or an export.

``assert_no_canary`` (``tests/canaries.py``) is the search; the full-disk test uses it too.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import docker
import httpx2
import pytest
from agent_process import AgentProcess, launch
from canaries import assert_no_canary
from dockerenv import AuthRegistry, ImageCleanup
from http_client import Api, client, session
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.docker

OPERATOR = "canary-operator-token-6b1f0e9a2d"
READER = "canary-reader-token-c93d27aa51"
PASSWORD = "canary-registry-password-5e8a47"
IDENTITY = "canary-identity-token-04d1b3c9"
BUILD_SECRET = "canary-build-secret-a7c2f160"
URL_PASSWORD = "canary-url-password-3f9b8e21"
WRONG_TOKEN = "canary-presented-token-91e0c4d7"  # presented, refused, never repeated
CANARIES = (OPERATOR, READER, PASSWORD, IDENTITY, BUILD_SECRET, URL_PASSWORD, WRONG_TOKEN)

FAULT = "canary-forced-internal-error"
FINISHED = {"completed", "failed", "cancelled", "timeout", "merged"}
# The agent with two faults planted, each raised by a line that reads a local variable holding
# a secret in clear (a traceback that shows values would print it): docker_build with target
# FAULT fails in its command handler, and a pull of an image named FAULT fails inside the
# executor (UNKNOWN_ERROR).
_SERVE_WITH_FAULT = textwrap.dedent(
    f"""
    import dataclasses
    import ai_admin.docker.executors as executors
    from ai_admin.commands import REGISTRY
    from ai_admin.queue.models import TaskType

    command = REGISTRY.get("docker_build")
    original = command.handler

    async def faulty(agent, p):
        if p.target == {FAULT!r}:
            password = p.auth.password.get_secret_value()
            build_args = dict(p.build_args)
            raise RuntimeError("a fault nobody planned for" if password else build_args)
        return await original(agent, p)

    REGISTRY._commands["docker_build"] = dataclasses.replace(command, handler=faulty)
    docker_executors = executors.docker_executors

    def with_a_faulty_pull(settings):
        found = dict(docker_executors(settings))
        pull = found[TaskType.PULL]

        async def faulty_pull(ctx):
            params = dict(ctx.params)
            if {FAULT!r} in params["image_name"]:
                password = params["auth"]["password"]
                raise RuntimeError("an executor fault nobody planned for" if password else "")
            return await pull(ctx)

        found[TaskType.PULL] = faulty_pull
        return found

    executors.docker_executors = with_a_faulty_pull
    from ai_admin.cli.main import app
    app()
    """
)


def faulty_agent(directory: Path) -> Path:
    """The agent with its faults as a script file: a traceback can then show its source lines
    (and would show the values they read, were the log to show values)."""
    path = directory / "ai_admin_with_faults.py"
    path.write_text(_SERVE_WITH_FAULT)
    return path


def test_assert_no_canary_finds_plain_and_encoded_canaries() -> None:
    secret = "canary-for-the-search-itself"
    assert_no_canary("nothing here", [secret])
    for found in (
        f"line with {secret} in it",
        secret.encode(),
        base64.b64encode(b'{"password": "' + secret.encode() + b'"}'),
        base64.urlsafe_b64encode(b'{"u": 1, "password": "' + secret.encode() + b'"}'),
    ):
        with pytest.raises(pytest.fail.Exception, match="found in"):
            assert_no_canary(found, [secret])


# --- the agent ---------------------------------------------------------------------------------


def start_agent(data_dir: Path, log_format: str) -> AgentProcess:
    """``ai-admin serve`` (with the planted fault) at TRACE level: every line it could log."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "AI_ADMIN_MAX_RETRIES": "0",
        "AI_ADMIN_SHUTDOWN_GRACE_S": "1",
        "AI_ADMIN_ALLOWED_ROOTS": json.dumps([str(data_dir.parent)]),
    }
    return launch(
        data_dir,
        token=OPERATOR,
        read_only=(READER,),
        command=(sys.executable, str(faulty_agent(data_dir.parent))),
        args=("--log-level", "TRACE", "--log-format", log_format),
        env=settings,
    )


def files_bytes(data_dir: Path) -> dict[str, bytes]:
    """Every file of the data directory (database, WAL, shared memory, token file)."""
    return {p.name: p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()}


@dataclasses.dataclass
class Outputs:
    """Everything one run of the scenario produced, for the searches."""

    log: str = ""
    files: list[tuple[str, bytes]] = dataclasses.field(default_factory=list)
    answers: list[str] = dataclasses.field(default_factory=list)
    events: bytes = b""
    mcp: list[str] = dataclasses.field(default_factory=list)
    exports: list[str] = dataclasses.field(default_factory=list)
    outcomes: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Answers that were not what the error path should give; checked by their own test, so
    # the searches still run when one path misbehaves.
    surprises: list[str] = dataclasses.field(default_factory=list)
    parser_refusals: list[str] = dataclasses.field(default_factory=list)

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.surprises.append(what[:1500])


# --- the scenario ------------------------------------------------------------------------------


async def raw_request(url: str, authorization: bytes) -> bytes:
    """A request whose Authorization header is exactly these bytes (no client would send
    them); the whole answer, head and body."""
    address = urlsplit(url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(
            b"GET /api/stats HTTP/1.1\r\nHost: " + address.netloc.encode() + b"\r\n"
            b"Connection: close\r\nAuthorization: " + authorization + b"\r\n\r\n"
        )
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 60)
    finally:
        writer.close()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _body(answer: bytes) -> dict[str, Any]:
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert isinstance(body, dict)
    return body


# Authorization values that must be a 401 with an auth code (never a 500, never logged).
MALFORMED_AUTHORIZATION = [
    b"Bearer " + OPERATOR.encode() + b"\xff",  # not UTF-8: the original 500
    b"Bearer \xff\xfe" + WRONG_TOKEN.encode(),
    b"Bearer " + "\u00e9".encode("latin-1") + OPERATOR.encode(),
    b"Bearer " + READER.encode() + b"\xc3",  # a cut UTF-8 sequence
    b"Bearer " + OPERATOR.encode() + "\u20ac".encode(),  # valid UTF-8, not ASCII
    b"Bearer " + f"{OPERATOR[:9]}\u0085{OPERATOR[9:]}".encode(),  # a C1 control character
    b"Bearer " + b"A" * 7000 + OPERATOR.encode(),
    b"Bearer " + WRONG_TOKEN.encode(),
    b"Bearer " + READER.upper().encode(),
    b"Basic " + base64.b64encode(f"user:{OPERATOR}".encode()),
    b"bearer  " + WRONG_TOKEN.encode() + b"\xed\xa0\x80",  # an encoded lone surrogate
]
# Control characters the HTTP parser itself refuses (400) before any handler runs.
REFUSED_BY_THE_PARSER = [
    b"Bearer " + OPERATOR.encode() + b"\x00",
    b"Bearer " + OPERATOR.encode() + b"\r",
    b"Bearer " + OPERATOR.encode() + b"\x01",
    b"Bearer " + READER.encode() + b"\x7f",
    b"Bearer " + OPERATOR.encode() + b"\x1b[0m",  # a terminal escape
    b"Bearer " + b"B" * 9000 + OPERATOR.encode(),  # beyond the parser's 8190 bytes a field
]


async def drive_headers(url: str, out: Outputs) -> None:
    for value in MALFORMED_AUTHORIZATION:
        answer = await raw_request(url, value)
        text = answer.decode(errors="replace")
        out.answers.append(text)
        code = _body(answer).get("error", {}).get("code") if _status(answer) == 401 else None
        out.expect(code in {"AUTH_INVALID_TOKEN", "AUTH_REQUIRED"}, f"{value[:80]!r}: {text}")
    for value in REFUSED_BY_THE_PARSER:
        answer = await raw_request(url, value)
        text = answer.decode(errors="replace")
        out.parser_refusals.append(text)
        out.expect(_status(answer) in {400, 401}, f"{value[:80]!r}: {text}")


def _auth() -> dict[str, str]:
    return {"username": "canary-user", "password": PASSWORD}


# (message, where the refusal must point): bad bytes and wrong types next to the secrets.
BAD_PARAMS: list[tuple[dict[str, Any], str]] = [
    (
        {"action": "docker_pull", "params": {"image_name": "busybox\x00", "auth": _auth()}},
        "params.image_name",
    ),
    (
        {
            "action": "docker_build",
            "params": {
                "context_path": "/tmp/\x00ctx",  # the original internal error
                "build_args": {"NPM_TOKEN": BUILD_SECRET},
                "auth": _auth(),
            },
        },
        "params.context_path",
    ),
    (
        {
            "action": "docker_build",
            "params": {
                "dockerfile": "FROM busybox\ud800",
                "build_args": {"NPM_TOKEN": BUILD_SECRET},
            },
        },
        "params.dockerfile",
    ),
    (
        {
            "action": "docker_build",
            "params": {
                "dockerfile": "FROM busybox",
                "build_args": {"NPM_TOKEN": BUILD_SECRET, "X": "\udfff"},
            },
        },
        "params.build_args.X",
    ),
    (
        {
            "action": "docker_build",
            "params": {
                "dockerfile": "FROM busybox",
                "labels": {"a": "b\x00"},
                "build_args": {"API_KEY": BUILD_SECRET},
            },
        },
        "params.labels.a",
    ),
    (
        {
            "action": "docker_push",
            "params": {
                "image_name": "x/y",
                "auth": {"username": "u", "password": PASSWORD + "\x00"},
            },
        },
        "params.auth.password",
    ),
    (
        {
            "action": "docker_push",
            "params": {"image_name": "x/y", "auth": {"identity_token": IDENTITY + "\ud834"}},
        },
        "params.auth.identity_token",
    ),
    (
        {
            "action": "docker_push",
            "params": {"image_name": "x/y", "auth": {"username": "u", "password": [PASSWORD]}},
        },
        "params.auth.password",
    ),
    (
        {
            "action": "docker_push",
            "params": {"image_name": "x/y", "auth": {"username": "u", "password": {"v": PASSWORD}}},
        },
        "params.auth.password",
    ),
    (
        {
            "action": "docker_pull",
            "params": {"image_name": "x/y", "auth": {**_auth(), "extra": IDENTITY}},
        },
        "params.auth.extra",
    ),
    (
        {
            "action": "docker_pull",
            "params": {"image_name": "x/y", "auth": {"identity_token": IDENTITY * 600}},
        },
        "params.auth.identity_token",
    ),
    (
        {
            "action": "docker_build",
            "params": {"dockerfile": "FROM busybox", "build_args": {"NPM_TOKEN": [BUILD_SECRET]}},
        },
        "params.build_args.NPM_TOKEN",
    ),
    (
        {
            "action": "docker_pull",
            "params": {"image_name": 5, "auth": {"username": "u", "password": PASSWORD}},
        },
        "params.image_name",
    ),
]


async def drive_bad_params(api: Api, reader: Api, out: Outputs) -> None:
    for message, where in BAD_PARAMS:
        answer = await api.cmd(message)
        error = answer.body.get("error") or {"details": {}}
        fields = [e.get("field") for e in error["details"].get("errors", [])]
        out.expect(
            answer.status == 400
            and (answer.code or "").startswith("VALIDATION_")
            and where in fields,
            f"{where}: {answer.describe()}",
        )
        refused = await reader.cmd(message)  # read-only: refused, and nothing echoed either
        out.expect(refused.status in {400, 403}, refused.describe())
    rest = await api.request(
        "POST",
        "/api/tasks",
        json_body={"task_type": "docker_push", "params": {"image_name": "x\x00", "auth": _auth()}},
    )
    out.expect(rest.status == 400, rest.describe())
    for body in (
        b'{"action": "docker_pull", "params": {"auth": {"password": "' + PASSWORD.encode(),
        b'{"action": "docker_pull", "params": {"image_name": "\xff", "auth": {"username": "u", '
        b'"password": "' + PASSWORD.encode() + b'"}}}',
    ):
        broken = await api.request("POST", "/cmd", data=body)
        out.expect(broken.status == 400, broken.describe())


async def finished(api: Api, task_id: str) -> dict[str, Any]:
    return await api.finished(task_id, timeout_s=180)


async def submit(api: Api, out: Outputs, action: str, **params: Any) -> str | None:
    """Queue a task; a refusal is a surprise (recorded), not the end of the scenario."""
    answer = await api.cmd({"action": action, "params": params})
    out.expect(answer.status == 200 and answer.data["merged_into"] is None, answer.describe())
    return str(answer.data["task_id"]) if answer.status == 200 else None


@dataclasses.dataclass
class Docker:
    client: docker.DockerClient
    registry: AuthRegistry
    busybox: str
    cleanup: ImageCleanup

    def local_image(self, name: str) -> tuple[str, str]:
        """A local image tagged for the auth registry: (repository, tag)."""
        repository, tag = f"{self.registry.address}/canary/{name}", uuid.uuid4().hex[:10]
        self.client.images.get(self.busybox).tag(repository, tag)
        self.cleanup.add(f"{repository}:{tag}")
        return repository, tag


async def drive_docker(api: Api, env: Docker, out: Outputs) -> None:
    """Real refusals from the htpasswd registry, builds with a secret build arg."""
    registry = env.registry.address
    push_repo, push_tag = await asyncio.to_thread(env.local_image, "push")
    userinfo_repo, userinfo_tag = await asyncio.to_thread(env.local_image, "userinfo")
    built = env.cleanup.add(f"canary/built:{uuid.uuid4().hex[:10]}")
    uses_it = f'FROM {env.busybox}\nARG NPM_TOKEN\nRUN test -n "$NPM_TOKEN"\n'
    refuses_it = f'FROM {env.busybox}\nARG NPM_TOKEN\nRUN test "$NPM_TOKEN" = something-else\n'
    ids = {
        "pull": await submit(
            api, out, "docker_pull", image_name=f"{registry}/canary/pull", tag="1", auth=_auth()
        ),
        "push": await submit(
            api, out, "docker_push", image_name=push_repo, tag=push_tag, auth=_auth()
        ),
        "executor_fault": await submit(
            api, out, "docker_pull", image_name=f"{registry}/canary/{FAULT}", auth=_auth()
        ),
        "identity": await submit(
            api,
            out,
            "docker_pull",
            image_name=f"{registry}/canary/identity",
            auth={"identity_token": IDENTITY},
        ),
        "userinfo": await submit(
            api,
            out,
            "docker_push",
            image_name=userinfo_repo,
            tag=userinfo_tag,
            auth={"registry": f"http://{env.registry.username}:{URL_PASSWORD}@{registry}"},
        ),
        "build_fails": await submit(
            api,
            out,
            "docker_build",
            dockerfile=refuses_it,
            build_args={
                "NPM_TOKEN": BUILD_SECRET,
                "PIP_INDEX_URL": f"https://u:{URL_PASSWORD}@pypi.invalid/simple",
            },
            no_cache=True,
            auth=_auth(),
        ),
        "build_ok": await submit(
            api,
            out,
            "docker_build",
            dockerfile=uses_it,
            build_args={"NPM_TOKEN": BUILD_SECRET, "DB_PASSWORD": PASSWORD},
            tags=[built],
            no_cache=True,
        ),
    }
    for name, task_id in ids.items():
        if task_id is not None:
            state = await finished(api, task_id)
            out.outcomes[name] = (state["status"]["value"], (state["error"] or {}).get("code"))
    listed = await api.ok("queue_list_tasks", limit=1000)
    params = {t["id"]: t["params"] for t in listed["tasks"]}
    out.outcomes["userinfo_auth"] = params.get(ids["userinfo"] or "", {}).get("auth")
    out.outcomes["build_args"] = params.get(ids["build_ok"] or "", {}).get("build_args")
    out.outcomes["task_ids"] = {k: v for k, v in ids.items() if v is not None}


async def drive_forced_error(api: Api, out: Outputs) -> None:
    answer = await api.cmd(
        {
            "action": "docker_build",
            "params": {
                "dockerfile": "FROM busybox",
                "target": FAULT,
                "build_args": {"NPM_TOKEN": BUILD_SECRET},
                "auth": {**_auth(), "registry": f"https://u:{URL_PASSWORD}@registry.invalid"},
            },
        }
    )
    out.expect((answer.status, answer.code) == (500, "INTERNAL_ERROR"), answer.describe())


async def read_events(http: aiohttp.ClientSession, url: str, token: str, sink: bytearray) -> None:
    """Every byte of ``/api/events`` until the agent closes the stream at shutdown."""
    async with http.get(
        f"{url}/api/events",
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
    ) as response:
        assert response.status == 200, await response.text()
        async for chunk in response.content.iter_any():
            sink.extend(chunk)


@asynccontextmanager
async def mcp_client(url: str, token: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, trust_env=False, timeout=180
        ) as http,
        Client(
            streamable_http_client(f"{url}/mcp", http_client=http), read_timeout_seconds=180
        ) as client,
    ):
        yield client


# JSON-RPC bodies no SDK client would send: lone surrogates, NUL, wrong types, cut JSON, each
# next to a password. "\\ud800" is the JSON escape of a lone surrogate.
_RAW_TOOL_CALLS = [
    '{"name": "docker_pull", "arguments": {"image_name": "x\\ud800", "auth": %s}}',
    '{"name": "docker_pull", "arguments": {"image_name": "x\\u0000", "auth": %s}}',
    '{"name": 5, "arguments": {"auth": %s}}',
    '{"name": "x\\ud800", "arguments": {"auth": %s}}',
    '{"name": "docker_pull", "arguments": {"auth": %s',
]


async def drive_mcp_raw(http: aiohttp.ClientSession, url: str, out: Outputs) -> None:
    """tools/call over ``/mcp`` as raw JSON-RPC; every answer kept, none may be a 5xx."""
    headers = {
        "Authorization": f"Bearer {OPERATOR}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "canary", "version": "1"},
        },
    }
    async with http.post(f"{url}/mcp", json=hello, headers=headers) as response:
        out.mcp.append(await response.text())
        session_id = response.headers.get("Mcp-Session-Id", "")
    headers |= {"Mcp-Session-Id": session_id, "Mcp-Protocol-Version": "2025-11-25"}
    initialized = b'{"jsonrpc": "2.0", "method": "notifications/initialized"}'
    async with http.post(f"{url}/mcp", data=initialized, headers=headers) as response:
        out.mcp.append(await response.text())
    auth = json.dumps(_auth())
    for number, call in enumerate(_RAW_TOOL_CALLS, start=2):
        body = f'{{"jsonrpc": "2.0", "id": {number}, "method": "tools/call", "params": '
        body += call % auth + "}"
        async with http.post(f"{url}/mcp", data=body.encode(), headers=headers) as response:
            text = await response.text()
            out.mcp.append(text)
            out.expect(response.status < 500, f"MCP {call[:60]}: {response.status} {text}")


async def drive_mcp(url: str, env: Docker, ids: dict[str, str], out: Outputs) -> None:
    """Tool calls, a resource and a prompt over ``/mcp``; every result kept as JSON."""
    repository, tag = await asyncio.to_thread(env.local_image, "mcp")
    async with mcp_client(url, OPERATOR) as client:
        calls: list[tuple[str, dict[str, Any]]] = [
            ("docker_push", {"image_name": repository, "tag": tag, "auth": _auth(), "wait": True}),
            (
                "docker_pull",
                {
                    "image_name": f"{env.registry.address}/canary/mcp",
                    "auth": {"identity_token": IDENTITY},
                    "wait": True,
                },
            ),
            (
                "docker_build",
                {
                    "dockerfile": "FROM busybox",
                    "build_args": {"NPM_TOKEN": BUILD_SECRET, "X": "\x00"},
                },
            ),
            (
                "docker_pull",
                {"image_name": "busybox", "auth": {"username": "u", "password": PASSWORD + "\x00"}},
            ),
            (
                "docker_build",
                {
                    "dockerfile": "FROM busybox",
                    "target": FAULT,
                    "auth": _auth(),
                    "build_args": {"NPM_TOKEN": BUILD_SECRET},
                },
            ),
            ("queue_export", {}),
            *[("queue_task_status", {"task_id": i, "include_logs": True}) for i in ids.values()],
        ]
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            out.mcp.append(result.model_dump_json())
        for task_id in ids.values():
            log = await client.read_resource(f"ai-admin://tasks/{task_id}/log")
            out.mcp.append(log.model_dump_json())
            prompt = await client.get_prompt("diagnose_task", {"task_id": task_id})
            out.mcp.append(prompt.model_dump_json())
    async with mcp_client(url, READER) as client:
        for name in ("queue_export", "queue_list_tasks"):
            out.mcp.append((await client.call_tool(name, {})).model_dump_json())


async def export_everything(api: Api, out: Outputs) -> None:
    for what in ("all", "jobs"):
        answer = await api.cmd({"action": "queue_export", "params": {"what": what}})
        assert answer.status == 200, answer.describe()
        out.exports.append(answer.text)
    for path in ("/api/tasks?include_logs=true&limit=1000", "/api/stats", "/metrics"):
        answer = await api.request("GET", path, envelope=False)
        out.answers.append(answer.text)


async def shutdown_mid_build(
    api: Api, agent: AgentProcess, env: Docker, out: Outputs
) -> str | None:
    """SIGTERM while a build that holds the secrets runs; the files are read first (the WAL
    is still there), then again after the agent stopped."""
    task_id = await submit(
        api,
        out,
        "docker_build",
        dockerfile=f"FROM {env.busybox}\nARG NPM_TOKEN\nRUN sleep 20\n",
        build_args={"NPM_TOKEN": BUILD_SECRET},
        no_cache=True,
        auth={"identity_token": IDENTITY},
    )
    if task_id is not None:
        await api.wait_for(task_id, lambda s: s["status"]["value"] == "building", timeout_s=120)
    out.files += [(f"{name} (running)", data) for name, data in files_bytes(agent.data_dir).items()]
    await asyncio.to_thread(agent.stop)
    return task_id


async def scenario(data_dir: Path, log_format: str, env: Docker) -> Outputs:
    out = Outputs()
    agent = start_agent(data_dir, log_format)
    events = bytearray()
    try:
        async with session() as http:
            api, reader = Api(http, agent.url, OPERATOR), Api(http, agent.url, READER)
            watchers = [
                asyncio.create_task(read_events(http, agent.url, t, events))
                for t in (READER, OPERATOR)
            ]
            await drive_headers(agent.url, out)
            await drive_bad_params(api, reader, out)
            await drive_forced_error(api, out)
            await drive_docker(api, env, out)
            await drive_mcp(agent.url, env, out.outcomes["task_ids"], out)
            await drive_mcp_raw(http, agent.url, out)
            await export_everything(api, out)
            await export_everything(reader, out)
            interrupted = await shutdown_mid_build(api, agent, env, out)
            await asyncio.wait_for(asyncio.gather(*watchers), 60)
            out.answers += [a.text for a in (*api.answers, *reader.answers)]
    finally:
        agent.stop()
    out.log += agent.output()
    out.outcomes["stopped"] = agent.exit_code

    again = start_agent(data_dir, log_format)  # the interrupted task comes back from the store
    try:
        async with session() as http:
            api, reader = Api(http, again.url, OPERATOR), Api(http, again.url, READER)
            if interrupted is not None:
                out.outcomes["after_restart"] = await api.task(interrupted)
            await export_everything(api, out)
            await export_everything(reader, out)
            out.answers += [a.text for a in (*api.answers, *reader.answers)]
    finally:
        again.stop()
    out.log += again.output()
    out.files += list(files_bytes(data_dir).items())
    out.events = bytes(events)
    return out


@pytest.fixture(scope="module", params=["text", "json"])
def outputs(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
    auth_registry: AuthRegistry,
    busybox_image: str,
) -> Iterator[Outputs]:
    cleanup = ImageCleanup(docker_client)
    env = Docker(docker_client, auth_registry, busybox_image, cleanup)
    data_dir = tmp_path_factory.mktemp(f"canary-{request.param}") / "data"
    try:
        yield asyncio.run(scenario(data_dir, request.param, env))
    finally:
        cleanup.remove_all()


# --- the searches -------------------------------------------------------------------------------


def test_every_error_path_answered_as_it_should(outputs: Outputs) -> None:
    assert outputs.surprises == []


def test_the_error_paths_were_really_taken(outputs: Outputs, auth_registry: AuthRegistry) -> None:
    outcomes = outputs.outcomes
    assert outcomes["pull"] == ("failed", "DOCKER_AUTHENTICATION_FAILED")
    assert outcomes["push"] == ("failed", "DOCKER_AUTHENTICATION_FAILED")
    assert outcomes["userinfo"] == ("failed", "DOCKER_AUTHENTICATION_FAILED")
    assert outcomes["identity"][0] == "failed"
    assert outcomes["build_fails"][0] == "failed"
    assert outcomes["build_ok"] == ("completed", None)
    assert outcomes["stopped"] == 0
    assert outcomes["after_restart"]["task_id"]  # back from the store after SIGTERM
    # The registry without its userinfo; the user name taken from it, the password hidden.
    assert outcomes["userinfo_auth"] == {
        "registry": f"http://{auth_registry.address}",
        "username": auth_registry.username,
        "password": "***",
    }
    assert outcomes["build_args"] == {"NPM_TOKEN": "***", "DB_PASSWORD": "***"}
    assert outcomes["executor_fault"] == ("failed", "UNKNOWN_ERROR")
    assert "an executor fault nobody planned for" in outputs.log
    assert "a fault nobody planned for" in outputs.log  # the forced error was logged...
    assert "faulty" in outputs.log  # ...with its traceback


def test_no_canary_in_the_log(outputs: Outputs) -> None:
    assert_no_canary(outputs.log, CANARIES, "the agent's log")


def test_no_canary_in_the_database_or_its_wal(outputs: Outputs) -> None:
    names = {name for name, _ in outputs.files}
    assert "ai-admin.db-wal (running)" in names, names
    for name, data in outputs.files:
        assert_no_canary(data, CANARIES, name)


def test_no_canary_in_any_answer(outputs: Outputs) -> None:
    assert outputs.answers
    for answer in outputs.answers:
        assert_no_canary(answer, CANARIES, f"an HTTP answer: {answer[:200]}")


def test_no_canary_in_the_http_parsers_refusals(outputs: Outputs) -> None:
    assert len(outputs.parser_refusals) == len(REFUSED_BY_THE_PARSER)
    for answer in outputs.parser_refusals:
        assert_no_canary(answer, CANARIES, f"a refusal of the HTTP parser: {answer[:200]}")


def test_no_canary_in_the_event_stream(outputs: Outputs) -> None:
    assert b"event: " in outputs.events
    assert_no_canary(outputs.events, CANARIES, "/api/events")


def test_no_canary_in_mcp_output(outputs: Outputs) -> None:
    assert len(outputs.mcp) > 10
    joined = "".join(outputs.mcp)
    assert "Parse error" in joined  # the raw JSON-RPC calls were answered
    assert "params.image_name: holds a NUL character" in joined
    for result in outputs.mcp:
        assert_no_canary(result, CANARIES, f"MCP output: {result[:200]}")


def test_no_canary_in_exports(outputs: Outputs) -> None:
    assert len(outputs.exports) == 8
    for export in outputs.exports:
        assert_no_canary(export, CANARIES, "queue_export")


def test_a_build_that_prints_its_secret_build_arg_stores_no_secret(
    tmp_path: Path, busybox_image: str, image_cleanup: ImageCleanup
) -> None:
    tag = image_cleanup.add(f"canary/prints:{uuid.uuid4().hex[:10]}")
    agent = start_agent(tmp_path / "data", "text")
    answers: list[str] = []

    async def build_and_read() -> None:
        async with client(agent.url, OPERATOR) as api:
            # The same RUN succeeding, and failing: a failure's message quotes the output.
            for last_step, outcome in (("true", "completed"), ("exit 3", "failed")):
                task_id = await submit(
                    api,
                    Outputs(),
                    "docker_build",
                    dockerfile=f"FROM {busybox_image}\nARG NPM_TOKEN\n"
                    f'RUN echo "using $NPM_TOKEN" && {last_step}\n',
                    build_args={"NPM_TOKEN": BUILD_SECRET},
                    tags=[tag],
                    no_cache=True,
                )
                assert task_id is not None
                state = await finished(api, task_id)
                assert state["status"]["value"] == outcome, state
                await api.ok("queue_task_status", task_id=task_id, include_logs=True)
            answers.extend(a.text for a in api.answers)
            assert any("using ***" in a for a in answers)  # the line is kept, masked

    try:
        asyncio.run(build_and_read())
    finally:
        agent.stop()
    for answer in answers:
        assert_no_canary(answer, [BUILD_SECRET], "an answer")
    for name, data in files_bytes(agent.data_dir).items():
        assert_no_canary(data, [BUILD_SECRET], name)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_no_canary_over_mcp_stdio(
    tmp_path: Path,
    log_format: str,
    auth_registry: AuthRegistry,
    docker_client: docker.DockerClient,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    """``ai-admin mcp`` (with the planted faults): its results, its log (stderr) and its data."""
    env = Docker(docker_client, auth_registry, busybox_image, image_cleanup)
    repository, tag = env.local_image("stdio")
    built = image_cleanup.add(f"canary/stdio:{uuid.uuid4().hex[:10]}")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    passed = {k: v for k, v in os.environ.items() if k in ("DOCKER_HOST", "PYTHONPATH")}
    server = StdioServerParameters(
        command=sys.executable,
        args=[str(faulty_agent(tmp_path)), "mcp", "--data-dir", str(data_dir)],
        env={
            **passed,
            "AI_ADMIN_LOG_LEVEL": "TRACE",
            "AI_ADMIN_LOG_FORMAT": log_format,
            "AI_ADMIN_MAX_RETRIES": "0",
        },
        cwd=data_dir,
    )
    calls: list[tuple[str, dict[str, Any]]] = [
        ("docker_push", {"image_name": repository, "tag": tag, "auth": _auth(), "wait": True}),
        (
            "docker_pull",
            {
                "image_name": f"{auth_registry.address}/canary/stdio",
                "auth": {"identity_token": IDENTITY},
                "wait": True,
            },
        ),
        (
            "docker_build",
            {
                "dockerfile": f'FROM {busybox_image}\nARG NPM_TOKEN\nRUN test -n "$NPM_TOKEN"\n',
                "build_args": {"NPM_TOKEN": BUILD_SECRET},
                "tags": [built],
                "wait": True,
            },
        ),
        ("docker_build", {"dockerfile": "FROM x", "target": FAULT, "auth": _auth()}),
        ("docker_pull", {"image_name": "x\x00", "auth": _auth()}),
        ("queue_export", {}),
        ("queue_list_tasks", {"include_logs": True}),
    ]
    results = []
    log_path = tmp_path / "stderr.log"
    with log_path.open("w") as errlog:
        async with Client(stdio_client(server, errlog=errlog), read_timeout_seconds=180) as client:
            for name, arguments in calls:
                results.append(await client.call_tool(name, arguments))
    codes = [(r.structured_content or {}).get("error", {}).get("code") for r in results]
    assert codes[:5] == [
        "DOCKER_AUTHENTICATION_FAILED",
        codes[1],
        None,
        "INTERNAL_ERROR",
        "VALIDATION_INVALID_FORMAT",
    ], codes
    assert codes[1] is not None  # the identity token was refused
    log = log_path.read_text()
    assert "a fault nobody planned for" in log
    assert_no_canary(log, CANARIES, "the stdio agent's log")
    for result in results:
        assert_no_canary(result.model_dump_json(), CANARIES, "an MCP result over stdio")
    for name, data in files_bytes(data_dir).items():
        assert_no_canary(data, CANARIES, name)
