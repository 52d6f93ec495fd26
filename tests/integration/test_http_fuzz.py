"""Property-based fuzzing of the HTTP door, in process (fake executors, real SQLite store).

Whatever a client sends to ``/cmd`` or to any route of the OpenAPI document: never a 500, always
a well-formed envelope whose status the document declares, and the agent keeps answering.
A longer hunt: ``HTTP_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/integration/test_http_fuzz.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from agent_process import OPERATOR_TOKEN, READ_ONLY_TOKEN
from http_client import Answer, Api, check_envelope, strict_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inprocess_agent import Served, serve_agent
from yarl import URL

from ai_admin.commands import REGISTRY
from ai_admin.http import openapi
from ai_admin.mcp import MCP_PATH

FUZZ = settings(
    max_examples=int(os.environ.get("HTTP_FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,  # no .hypothesis/ left in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- strategies ----------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
PARAM_NAMES = sorted({name for c in REGISTRY for name in c.params.model_fields} | {"auth"})
param_values = (
    json_values
    | st.sampled_from(["pending", "failed", "docker_pull", "pause", "retry", "all", "high"])
    | st.sampled_from(["team/app", "127.0.0.1:5000/x/y:1", "Bad/Name", "a" * 300, ""])
    | st.fixed_dictionaries(
        {},
        optional={"username": st.text(max_size=8), "password": st.text(max_size=8), "x": scalars},
    )
)
params = st.dictionaries(
    st.sampled_from(PARAM_NAMES) | st.text(max_size=12), param_values, max_size=5
)
messages = st.fixed_dictionaries(
    {"action": st.sampled_from(REGISTRY.names()) | st.text(max_size=20) | json_values},
    optional={"params": params | json_values, "extra": json_values},
)
bodies = (
    messages.map(json.dumps)
    | json_values.map(json.dumps)
    | st.binary(max_size=300)
    | st.sampled_from(["", "{", "NaN", '{"action": "queue_status", "params": {"limit": Infinity}}'])
)


def schema_values(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    """Values for a JSON schema of the OpenAPI document: mostly valid, sometimes anything."""
    if depth > 6:
        return json_values
    if "$ref" in schema:
        return schema_values(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema and "properties" not in schema:  # else a rule beside an object's
            return st.one_of([schema_values(s, defs, depth + 1) for s in schema[key]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    if kind == "array":
        items = schema_values(schema.get("items", {}), defs, depth + 1)
        return st.lists(items, max_size=schema.get("maxItems", 4) or 4)
    if kind == "object":
        return _objects(schema, defs, depth)
    return _SCALARS.get(kind, lambda _: json_values)(schema)


_SCALARS: dict[Any, Any] = {
    "boolean": lambda _: st.booleans(),
    "integer": lambda s: st.integers(s.get("minimum"), s.get("maximum")) | st.integers(),
    "number": lambda _: st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
    "string": lambda s: st.text(min_size=s.get("minLength", 0), max_size=40) | st.text(max_size=5),
    "null": lambda _: st.none(),
}


def _objects(schema: dict[str, Any], defs: dict[str, Any], depth: int) -> Any:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    values = {k: schema_values(v, defs, depth + 1) for k, v in props.items()}
    return st.fixed_dictionaries(
        {k: v for k, v in values.items() if k in required},
        optional={k: v for k, v in values.items() if k not in required},
    )


def query_text(value: Any) -> str:
    """A query-string form of a generated value, the way a client would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


# -- the in-process agent --------------------------------------------------------------------


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Served]:
    """In this process, with executors that finish at once: conftest's ``api`` talks to it."""
    async with serve_agent(tmp_path, max_queue_size=50) as served:
        yield served


async def still_answers(api: Api) -> None:
    health = await api.request("GET", "/health", token=None, envelope=False)
    assert health.status == 200, health.describe()
    assert (await api.ok("queue_status"))["summary"]["total_tasks"] >= 0


def no_server_error(answer: Answer) -> None:
    assert answer.status < 500, answer.describe()
    check_envelope(answer)


# -- /cmd ------------------------------------------------------------------------------------


@FUZZ
@given(body=bodies, read_only=st.booleans())
async def test_cmd_answers_every_body_with_an_envelope(
    api: Api, body: str | bytes, read_only: bool
) -> None:
    token = READ_ONLY_TOKEN if read_only else OPERATOR_TOKEN
    answer = await api.request("POST", "/cmd", data=body, token=token, envelope=False)
    no_server_error(answer)
    if read_only:
        assert answer.code != "AUTH_INVALID_TOKEN"
    api.answers.clear()


@FUZZ
@given(message=messages)
async def test_cmd_answers_every_message_with_an_envelope(api: Api, message: Any) -> None:
    answer = await api.request("POST", "/cmd", json_body=message, envelope=False)
    no_server_error(answer)
    action = message.get("action")
    if answer.body["success"]:
        assert answer.body["action"] == action
    await still_answers(api)
    api.answers.clear()


async def test_the_agent_survives_the_fuzzing(api: Api) -> None:
    """A fixed burst of the nastiest bodies, then ordinary work still gets done."""
    nasty = [b"[" * 50_000, b"{" * 50_000, b'{"action": "' + b"x" * 900_000 + b'"}', b"\x00" * 100]
    for body in nasty:
        no_server_error(await api.request("POST", "/cmd", data=body, envelope=False))
    submitted = await api.ok("docker_pull", image_name="team/app")
    state = await api.finished(submitted["task_id"], timeout_s=30)
    assert state["status"]["value"] == "completed"
    await still_answers(api)


# -- every route of the OpenAPI document -------------------------------------------------------

DOCUMENT = openapi.document()
SCHEMAS = DOCUMENT["components"]["schemas"]
OPERATIONS = sorted(
    (method.upper(), path, op)
    for path, item in DOCUMENT["paths"].items()
    for method, op in item.items()
    if path != "/api/events"  # a stream: fuzzed below with a task id, so that it ends
    and path != MCP_PATH  # JSON-RPC, not command envelopes: tests/integration/test_mcp.py
)


@st.composite
def requests_for(draw: st.DrawFn, operation: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    method, path, op = operation
    query: list[tuple[str, str]] = []
    for parameter in op.get("parameters", []):
        value = draw(schema_values(parameter["schema"], SCHEMAS))
        if parameter["in"] == "path":
            text = query_text(value)
            if text.strip(".") == "":  # "", ".", "..": a client would not send these as an id
                text = f"x{text}"
            path = path.replace(f"{{{parameter['name']}}}", quote(text, safe=""))
        elif draw(st.booleans()):
            values = value if isinstance(value, list) else [value]
            query += [(parameter["name"], query_text(v)) for v in values]
    if draw(st.booleans()):
        query.append((draw(st.text(min_size=1, max_size=8)), draw(st.text(max_size=8))))
    body: Any = None
    if "requestBody" in op:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        body = json.dumps(draw(schema_values(schema, SCHEMAS) | json_values))
    return {"method": method, "path": path, "query": query, "body": body, "op": op}


@FUZZ
@given(request=st.sampled_from(OPERATIONS).flatmap(requests_for))
async def test_every_documented_route_answers_as_documented(
    api: Api, request: dict[str, Any]
) -> None:
    async with api.session.request(
        request["method"],
        URL(api.url + request["path"], encoded=True),
        params=request["query"],
        data=request["body"],
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    ) as response:
        text = await response.text()
        answer = Answer(
            request["method"],
            request["path"],
            response.status,
            text,
            response.content_type,
            headers={**response.headers},
        )
    if answer.content_type == "application/json":
        answer.body = strict_json(text)
    assert answer.status < 500, answer.describe()
    assert str(answer.status) in request["op"]["responses"], answer.describe()
    if request["path"] not in ("/metrics", "/openapi.json", "/health") or answer.status != 200:
        check_envelope(answer)
    assert "Traceback" not in text


@FUZZ
@given(task_id=st.text(max_size=40) | st.sampled_from(["", "%", "../x"]))
async def test_event_streams_for_any_task_id_end(api: Api, task_id: str) -> None:
    async with api.session.get(
        api.url + "/api/events",
        params={"task_id": task_id},
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        timeout=aiohttp.ClientTimeout(total=10),
    ) as response:
        text = await response.text()
        answer = Answer("GET", "/api/events", response.status, text, response.content_type)
    answer.body = strict_json(text)
    assert answer.status == 404, answer.describe()
    check_envelope(answer)
