"""Who may do what, and what the agent tells the world: tokens, the start-up refusals, the
generated token, ``/health``, ``/metrics`` and ``/openapi.json``, against real agents."""

from __future__ import annotations

import os
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schedule_cases
from agent_process import OPERATOR_TOKEN, READ_ONLY_TOKEN, launch
from http_client import Answer, Api, session, strict_json

from ai_admin.agent import Agent
from ai_admin.commands import REGISTRY
from ai_admin.config import Settings
from ai_admin.errors import ErrorCode
from ai_admin.http.app import create_app
from ai_admin.http.auth import Tokens

pytestmark = pytest.mark.docker

SOME_ID = "123e4567-e89b-12d3-a456-426614174000"
UNREACHABLE = "127.0.0.1:1/ai-admin-test/unreachable"
# Every operation but the open ones (OPEN), with a request a client could send to it.
OPERATIONS: list[tuple[str, str, Any]] = [
    ("POST", "/cmd", {"action": "queue_status"}),
    ("GET", "/api/tasks", None),
    ("POST", "/api/tasks", {"task_type": "docker_pull", "params": {"image_name": UNREACHABLE}}),
    ("GET", f"/api/tasks/{SOME_ID}", None),
    ("POST", f"/api/tasks/{SOME_ID}/pause", None),
    ("POST", f"/api/tasks/{SOME_ID}/resume", None),
    ("POST", f"/api/tasks/{SOME_ID}/retry", None),
    ("POST", f"/api/tasks/{SOME_ID}/cancel", None),
    ("GET", "/api/stats", None),
    ("GET", "/api/commands", None),
    ("GET", "/api/batches", None),
    ("POST", "/api/batches", {"tasks": [{"action": "docker_pull", "params": {"image_name": "a"}}]}),
    ("GET", f"/api/batches/{SOME_ID}", None),
    ("DELETE", f"/api/batches/{SOME_ID}", None),
    *[("POST", f"/api/batches/{SOME_ID}/{a}", None) for a in ("stop", "start", "cancel")],
    ("POST", f"/api/batches/{SOME_ID}/move", {"position": 1}),
    ("GET", "/api/queues", None),
    ("POST", "/api/queues", {"name": "other"}),
    ("GET", "/api/queues/default", None),
    ("DELETE", "/api/queues/other", None),
    *[("POST", f"/api/queues/default/{a}", None) for a in ("pause", "resume")],
    *[("POST", f"/api/queues/default/{a}", {}) for a in ("configure", "clear")],
    *schedule_cases.OPERATIONS,
    ("GET", f"/api/events?task_id={SOME_ID}", None),
    ("GET", "/metrics", None),
]
MCP: list[tuple[str, str, Any]] = [
    ("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    ("GET", "/mcp", None),
    ("DELETE", "/mcp", None),
]
OPEN = [("GET", "/health"), ("GET", "/openapi.json")]  # all a token-less client may read
# Every request above that changes something (all but reads), and every command that does.
WRITES: list[tuple[str, str, Any]] = [
    *[(m, path, body) for m, path, body in OPERATIONS if m != "GET" and path != "/cmd"],
    *[
        ("POST", "/cmd", c.example_message())
        for c in REGISTRY
        if not c.read_only  # submitting, managing, pausing, clearing, configuring
    ],
]


async def send(api: Api, method: str, path: str, body: Any, **kwargs: Any) -> Answer:
    if body is None:
        return await api.request(method, path, **kwargs)
    return await api.request(method, path, json_body=body, **kwargs)


# -- tokens ------------------------------------------------------------------------------------


# The ids in the requests above, as the route table writes them.
_IDS = [
    (rf"^/api/batches/{SOME_ID}", "/api/batches/{batch_id}"),
    (rf"^/api/tasks/{SOME_ID}", "/api/tasks/{task_id}"),
    (r"^/api/queues/[a-z]+", "/api/queues/{queue}"),
    (rf"^/api/schedules/{schedule_cases.SOME_SCHEDULE}", "/api/schedules/{schedule_id}"),
]


def _template(path: str) -> str:
    for pattern, template in _IDS:
        path = re.sub(pattern, template, path)
    return path


def test_operations_name_every_route_but_the_open_ones(tmp_path: Path) -> None:
    """So a route added later cannot be left out of the token test above."""
    named = {(method, _template(path.split("?")[0])) for method, path, _ in OPERATIONS + MCP}
    assert named | set(OPEN) == app_routes(tmp_path)
    assert not named & set(OPEN)


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS + MCP)
async def test_everything_but_health_and_openapi_needs_a_valid_token(
    api: Api, method: str, path: str, body: Any
) -> None:
    for headers, code in [
        ({}, ErrorCode.AUTH_REQUIRED),
        ({"Authorization": f"Basic {OPERATOR_TOKEN}"}, ErrorCode.AUTH_REQUIRED),
        ({"Authorization": "Bearer "}, ErrorCode.AUTH_REQUIRED),
        ({"Authorization": "Bearer wrong-token"}, ErrorCode.AUTH_INVALID_TOKEN),
        ({"Authorization": f"Bearer {OPERATOR_TOKEN}x"}, ErrorCode.AUTH_INVALID_TOKEN),
        ({"Authorization": f"Bearer {OPERATOR_TOKEN.upper()}"}, ErrorCode.AUTH_INVALID_TOKEN),
    ]:
        answer = await send(api, method, path, body, token=None, headers=headers)
        assert (answer.status, answer.code) == (401, code.value), answer.describe()
        assert answer.headers["WWW-Authenticate"].startswith("Bearer ")
        assert OPERATOR_TOKEN not in answer.text


async def test_the_openapi_document_is_open_and_tells_nothing_secret(api: Api) -> None:
    """API tools read the document before they hold a token; any token, or none, will do."""
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        answer = await api.request(
            "GET", "/openapi.json", token=None, headers=headers, envelope=False
        )
        assert (answer.status, answer.content_type) == (200, "application/json")
        assert strict_json(answer.text)["paths"]
        assert OPERATOR_TOKEN not in answer.text
        assert READ_ONLY_TOKEN not in answer.text
        assert "WWW-Authenticate" not in answer.headers


async def test_health_is_open_and_tells_nothing_secret(api: Api) -> None:
    answer = await api.request("GET", "/health", token=None, envelope=False)
    assert answer.status == 200
    assert {"status", "version", "uptime_s", "queue", "docker"} <= set(answer.body)
    assert answer.body["docker"]["reachable"] is True
    assert OPERATOR_TOKEN not in answer.text
    assert READ_ONLY_TOKEN not in answer.text


async def test_read_only_token_reads_but_may_not_submit_or_manage(api: Api) -> None:
    reader = Api(api.session, api.url, READ_ONLY_TOKEN)
    before = await api.ok("queue_configure")
    total = await api.total_tasks()
    for method, path, body in OPERATIONS:
        if (method, path, body) in WRITES:
            continue
        answer = await send(reader, method, path, body, envelope=False)
        assert answer.status in (200, 404), f"{method} {path}: {answer.describe()}"
    for command in REGISTRY:
        if command.read_only:
            answer = await reader.cmd(command.example_message())
            assert answer.code != ErrorCode.AUTH_FORBIDDEN, answer.describe()
    for method, path, body in WRITES:
        answer = await send(reader, method, path, body)
        assert (answer.status, answer.code) == (403, ErrorCode.AUTH_FORBIDDEN), answer.describe()
        assert "operator token" in " ".join(answer.body["error"]["suggestions"])
    assert await api.total_tasks() == total
    assert await api.ok("queue_configure") == before
    assert (await api.ok("queue_status"))["queue"]["paused"] is False


def test_non_loopback_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "::"):  # noqa: S104 - the refusal is the point
        data = tmp_path / f"data-{host.replace(':', '_')}"
        refused = launch(data, token=None, host=host, wait=False)
        code = refused.wait_exit()
        assert code != 0
        err = refused.stderr()
        assert f"refusing to listen on {host} without a token" in err
        assert "AI_ADMIN_TOKEN" in err
        assert "Traceback" not in refused.output()
        assert not (data / "token").exists()


def test_a_busy_port_is_a_clear_refusal(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = launch(tmp_path / "data", args=["--port", str(port)], wait=False)
        assert refused.wait_exit() == 2
    assert f"cannot listen on 127.0.0.1:{port}" in refused.stderr()
    assert "address already in use" in refused.stderr()
    assert "Traceback" not in refused.output()


async def test_a_generated_token_is_saved_0600_printed_once_and_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = launch(data, token=None)
    try:
        token_file = data / "token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32
        assert token in first.stdout()
        assert "generated an API token" in first.stdout()
        async with session() as http:
            assert (await Api(http, first.url, token).ok("queue_status"))["summary"]
            reader = Api(http, first.url, READ_ONLY_TOKEN)
            assert (await reader.ok("queue_status"))["summary"]
    finally:
        assert first.stop() == 0
    assert token not in first.stderr()

    second = launch(data, token=None)
    try:
        assert token not in second.output()  # shown once, on the first start only
        assert token_file.read_text().strip() == token
        async with session() as http:
            assert (await Api(http, second.url, token).ok("queue_status"))["summary"]
    finally:
        assert second.stop() == 0


# -- /metrics ----------------------------------------------------------------------------------

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$"
)


def prometheus(text: str) -> dict[str, float]:
    """Parse the text format strictly: every line a comment or a sample."""
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line.startswith("# HELP "):
            continue
        else:
            match = _SAMPLE.match(line)
            assert match, f"not a Prometheus sample: {line!r}"
            key = match["name"] + (f"{{{match['labels']}}}" if match["labels"] else "")
            samples[key] = float(match["value"])
            assert any(match["name"].startswith(t) for t in typed), f"untyped: {line}"
    return samples


async def test_metrics_are_prometheus_text_with_ai_admin_counters(api: Api) -> None:
    first = await api.request("GET", "/metrics", envelope=False)
    assert first.status == 200
    assert first.content_type == "text/plain"
    before = prometheus(first.text)
    assert all(name.startswith("ai_admin_") for name in before)
    for counter in ("enqueued", "completed", "failed", "cancelled", "retried", "merged"):
        assert f"ai_admin_tasks_{counter}_total" in before
    assert before["ai_admin_queue_max_concurrent"] == 4

    submitted = await api.ok("docker_pull", image_name=UNREACHABLE, tag="m", max_retries=0)
    await api.finished(submitted["task_id"])
    after = prometheus((await api.request("GET", "/metrics", envelope=False)).text)
    assert after["ai_admin_tasks_enqueued_total"] == before["ai_admin_tasks_enqueued_total"] + 1
    assert after["ai_admin_tasks_failed_total"] == before["ai_admin_tasks_failed_total"] + 1
    assert after['ai_admin_tasks_by_status{status="failed"}'] >= 1


# -- /openapi.json -----------------------------------------------------------------------------


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references: {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref}: {part} is not in an object"
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def app_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, the manage actions spelled out."""
    app = create_app(Agent(Settings(data_dir=tmp_path)), Tokens(OPERATOR_TOKEN))
    routes: set[tuple[str, str]] = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical if route.resource else ""
        if "{action}" in path:
            for action in ("pause", "resume", "retry", "cancel"):
                routes.add((route.method, path.replace("{action}", action)))
        else:
            routes.add((route.method, path))
    return routes


async def test_openapi_document_is_complete_and_resolves(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("AI_ADMIN_")]:
        monkeypatch.delenv(name)  # app_routes builds Settings in this process
    answer = await api.request("GET", "/openapi.json", envelope=False)
    assert answer.status == 200
    document = strict_json(answer.text)
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"]
    assert document["info"]["version"]
    methods = {"get", "post", "put", "patch", "delete", "head", "options"}
    documented = set()
    for path, item in document["paths"].items():
        assert path.startswith("/")
        for method, operation in item.items():
            assert method in methods, f"{path}: {method}"
            documented.add((method.upper(), path))
            responses = operation["responses"]
            assert responses, f"{method} {path} has no responses"
            assert "200" in responses or "202" in responses, f"{method} {path}"
            for status, response in responses.items():
                assert re.fullmatch(r"[1-5][0-9][0-9]", status), f"{path}: {status}"
                response = resolve(document, response["$ref"]) if "$ref" in response else response
                assert response["description"]
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in {"query", "path", "header"}
                if parameter["in"] == "path":
                    assert parameter["required"] is True
                    assert f"{{{parameter['name']}}}" in path
    assert documented == app_routes(tmp_path)
    for ref in set(refs(document)):
        resolve(document, ref)
    opened = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security") == []
    }
    assert opened == set(OPEN)
    assert document["security"] == [{"bearer": []}]
    submit = document["paths"]["/api/tasks"]["post"]["responses"]
    assert "200" not in submit
    assert submit["202"]["headers"]["Location"]["required"] is True
    cmd_answer = document["paths"]["/cmd"]["post"]["responses"]["200"]
    assert cmd_answer["headers"]["Location"]["required"] is False
    messages = document["paths"]["/cmd"]["post"]["requestBody"]["content"]["application/json"]
    actions = {m["properties"]["action"]["const"] for m in messages["schema"]["oneOf"]}
    assert actions == set(REGISTRY.names())


async def test_openapi_documents_the_host_origin_and_limit_refusals(api: Api) -> None:
    document = strict_json((await api.request("GET", "/openapi.json", envelope=False)).text)
    paths = document["paths"]
    for path, item in paths.items():
        for method, operation in item.items():
            for status, code in (("400", "REQUEST_HOST_NOT_ALLOWED"), ("403", "REQUEST_ORIGIN")):
                response = operation["responses"][status]
                described = resolve(document, response["$ref"])["description"]
                assert code in described, f"{method} {path} {status}"
    for path, method in (("/api/events", "get"), ("/mcp", "post"), ("/mcp", "get")):
        response = paths[path][method]["responses"]["429"]
        assert "REQUEST_LIMIT_REACHED" in resolve(document, response["$ref"])["description"]
