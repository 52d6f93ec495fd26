"""The dashboard's page and files as the agent's app serves them, in-process: exactly the
files of its table, without a token, under a strict Content-Security-Policy, revalidated on
every load; nothing else under ``/ui/``; the API behind them unchanged; and the page's own
commands let through the Origin check while other sites' stay refused.

The browser's view of the same page is ``tests/integration/test_dashboard.py`` (this module has
another name: pytest imports test modules by their base name, and two alike collide).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ai_admin.agent import Agent
from ai_admin.config import Settings
from ai_admin.http.app import create_app
from ai_admin.http.auth import load_tokens
from ai_admin.http.dashboard import assets
from ai_admin.python_api import TaskQueue
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskType

OPERATOR = "operator-token-0"
READER = "reader-token-one"
PACKAGE = Path(__file__).resolve().parents[2] / "ai_admin" / "http" / "dashboard"
SERVED = {
    "/": ("index.html", "text/html"),
    "/ui/app.js": ("app.js", "text/javascript"),
    "/ui/api.js": ("api.js", "text/javascript"),
    "/ui/events.js": ("events.js", "text/javascript"),
    "/ui/render.js": ("render.js", "text/javascript"),
    "/ui/app.css": ("app.css", "text/css"),
    "/ui/icon.svg": ("icon.svg", "image/svg+xml"),
}


async def _never_runs(ctx: TaskContext) -> dict[str, Any]:
    raise AssertionError("no test here runs a task")


@asynccontextmanager
async def _client(tmp_path: Path, **options: Any) -> AsyncIterator[TestClient[Any, Any]]:
    settings = Settings(
        data_dir=tmp_path,
        token=OPERATOR,
        read_only_tokens=[READER],
        shutdown_grace_s=0.2,
        **options,
    )
    tokens, _generated = load_tokens(settings)
    agent = Agent(
        settings, TaskQueue(executors=dict.fromkeys(TaskType, _never_runs), settings=settings)
    )
    await agent.queue.start()
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(agent, tokens)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await agent.stop()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with _client(tmp_path) as opened:
        yield opened


def _own_origin(client: TestClient[Any, Any]) -> tuple[str, str]:
    """The Host a browser sends to this agent, and the origin of the agent's own page."""
    host = f"127.0.0.1:{client.port}"
    return host, f"http://{host}"


# -- what is served, and how --------------------------------------------------------------


async def test_each_file_is_served_without_a_token_with_its_type_and_security_headers(
    client: TestClient[Any, Any],
) -> None:
    for path, (name, media_type) in SERVED.items():
        response = await client.get(path)
        assert response.status == 200, path
        assert await response.read() == (PACKAGE / name).read_bytes(), path
        assert response.content_type == media_type, path
        headers = response.headers
        assert headers["Content-Security-Policy"] == assets.CONTENT_SECURITY_POLICY
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-cache"  # asked again on every load
        assert re.fullmatch(r'"[0-9a-f]{32}"', headers["ETag"]), path


def test_the_policy_allows_nothing_from_another_host_and_no_inline_code() -> None:
    directives = dict(d.split(" ", 1) for d in assets.CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in assets.CONTENT_SECURITY_POLICY
    assert "data:" not in assets.CONTENT_SECURITY_POLICY


async def test_an_unchanged_file_is_answered_304_and_a_new_version_gets_a_new_etag(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = await client.get("/ui/app.js")
    etag = first.headers["ETag"]
    again = await client.get("/ui/app.js", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["Content-Security-Policy"] == assets.CONTENT_SECURITY_POLICY
    listed = await client.get("/ui/app.js", headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.status == 304
    stale = await client.get("/ui/app.js", headers={"If-None-Match": '"an-older-version"'})
    assert stale.status == 200

    # A new version of the file (a new agent) has another validator: the cached copy is not
    # used.
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "app.js").write_bytes((PACKAGE / "app.js").read_bytes() + b"\n// a new version\n")
    monkeypatch.setattr(assets, "FOLDER", newer)
    assets.asset.cache_clear()
    try:
        changed = await client.get("/ui/app.js", headers={"If-None-Match": etag})
        assert changed.status == 200
        assert await changed.read() == (newer / "app.js").read_bytes()
        assert changed.headers["ETag"] != etag
    finally:
        assets.asset.cache_clear()


async def test_head_is_answered_and_other_methods_are_refused(
    client: TestClient[Any, Any],
) -> None:
    head = await client.head("/ui/app.css")
    assert head.status == 200
    assert head.headers["Content-Security-Policy"] == assets.CONTENT_SECURITY_POLICY
    for method in ("POST", "PUT", "DELETE"):
        response = await client.request(method, "/", headers={"Origin": _own_origin(client)[1]})
        body = await response.json()
        assert response.status == 405, method
        assert body["error"]["code"] == "REQUEST_METHOD_NOT_ALLOWED"
        assert response.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path",
    [
        "/ui/",
        "/ui",
        "/ui/index.html",
        "/index.html",
        "/ui/__init__.py",
        "/ui/assets.py",
        "/ui/serve.py",
        "/ui/app.js/",
        "/ui//app.js",
        "/ui/APP.JS",
        "/ui/app.js.map",
        "/ui/../app.py",
        "/ui/%2e%2e/assets.py",
        "/ui/..%2fassets.py",
        "/ui/%2e%2e%2f%2e%2e%2fapp.py",
        "/ui/dashboard/app.js",
        "/ui/app.js%00",
        "/ui/....//assets.py",
    ],
)
async def test_nothing_else_under_ui_is_reachable(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path, headers={"Authorization": f"Bearer {OPERATOR}"})
    body = await response.read()
    assert response.status == 404, (path, body[:200])
    assert b'"code": "REQUEST_NOT_FOUND"' in body  # the agent's envelope, not a file


@pytest.mark.parametrize(
    "target",
    [
        b"/ui/../ui/assets.py",
        b"/ui/%2e%2e/dashboard/assets.py",
        b"/ui/..%2f..%2fapp.py",
        b"/ui/./assets.py",
        b"/ui/%2F..%2Fserve.py",
        b"//ui/app.js/../serve.py",
    ],
)
async def test_a_path_sent_as_is_reaches_no_file_of_the_package(
    client: TestClient[Any, Any], target: bytes
) -> None:
    """The request line exactly as a hostile client writes it, with no client normalising
    it first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    # Refused as a path, or (outside /ui/) left to the API, which wants a token: no file.
    status = head.split(b" ", 2)[1]
    assert status in (b"400", b"401", b"404"), (target, head)
    assert b"from __future__" not in body, target


async def test_the_api_still_needs_its_token_and_the_page_holds_no_data(
    client: TestClient[Any, Any],
) -> None:
    refused = await client.get("/api/stats")
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "AUTH_REQUIRED"
    page = (await (await client.get("/")).read()).decode()
    assert OPERATOR not in page


async def test_the_page_is_refused_to_a_foreign_host_like_every_route(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/", headers={"Host": "evil.example"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "REQUEST_HOST_NOT_ALLOWED"


# -- the page's own commands through the Origin check --------------------------------------


async def test_the_pages_own_origin_may_send_commands_and_other_origins_may_not(
    client: TestClient[Any, Any],
) -> None:
    host, own = _own_origin(client)
    bearer = {"Authorization": f"Bearer {OPERATOR}", "Host": host}
    message = {"action": "queue_status"}
    ok = await client.post("/cmd", json=message, headers={**bearer, "Origin": own})
    assert ok.status == 200, await ok.text()
    for origin in (
        "http://evil.example",
        f"https://{host}",  # another scheme is another origin
        f"http://127.0.0.1:{client.port + 1}",
        f"http://{host}.evil.example",
        "null",
    ):
        refused = await client.post("/cmd", json=message, headers={**bearer, "Origin": origin})
        assert refused.status == 403, origin
        assert (await refused.json())["error"]["code"] == "REQUEST_ORIGIN_NOT_ALLOWED"
    # The same origin needs the token all the same.
    anonymous = await client.post("/cmd", json=message, headers={"Host": host, "Origin": own})
    assert anonymous.status == 401


async def test_an_agent_that_accepts_any_host_does_not_take_an_origin_from_it(
    tmp_path: Path,
) -> None:
    """Listening on every interface with allowed_hosts empty, the Host header is not checked,
    so a rebinding site's Host and Origin agree with each other: that is no proof the page is
    the agent's own."""
    async with _client(tmp_path, host="0.0.0.0") as client:  # noqa: S104
        headers = {
            "Authorization": f"Bearer {OPERATOR}",
            "Host": "rebound.example:8060",
            "Origin": "http://rebound.example:8060",
        }
        refused = await client.post("/cmd", json={"action": "queue_status"}, headers=headers)
        assert refused.status == 403
        assert (await refused.json())["error"]["code"] == "REQUEST_ORIGIN_NOT_ALLOWED"
        page = await client.get("/", headers={"Host": "rebound.example:8060"})
        assert page.status == 200  # the page itself holds nothing


async def test_a_named_host_has_its_own_origin_for_the_page(tmp_path: Path) -> None:
    async with _client(tmp_path, allowed_hosts=["agent.example"]) as client:
        headers = {
            "Authorization": f"Bearer {OPERATOR}",
            "Host": "agent.example",
            "Origin": "http://agent.example",
        }
        ok = await client.post("/cmd", json={"action": "queue_status"}, headers=headers)
        assert ok.status == 200, await ok.text()


# -- the files themselves --------------------------------------------------------------------


def test_every_file_of_the_package_is_in_the_table_and_every_reference_is_served() -> None:
    """A file added to the folder but not to the table would never be reachable; a script or
    style the page names must be one the agent serves."""
    files = {p.name for p in PACKAGE.iterdir() if p.is_file() and p.suffix != ".py"}
    assert files == {name for name, _type in SERVED.values()}
    assert set(SERVED) == assets.ASSETS
    html = (PACKAGE / "index.html").read_text()
    named = set(re.findall(r'(?:src|href)="(/[^"]*)"', html))
    for script in PACKAGE.glob("*.js"):
        named |= {f"/ui/{m}" for m in re.findall(r'from "\./([\w.]+)"', script.read_text())}
    assert named <= set(SERVED), named - set(SERVED)
    assert {"/ui/app.js", "/ui/app.css", "/ui/icon.svg", "/ui/api.js"} <= named


def test_the_page_has_no_inline_script_or_style_and_nothing_from_another_host() -> None:
    html = (PACKAGE / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.DOTALL)
    assert scripts == [(' type="module" src="/ui/app.js"', "")]
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
    for name in ("index.html", "app.js", "api.js", "events.js", "render.js", "app.css"):
        text = (PACKAGE / name).read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), name
        assert "innerHTML" not in text, name  # text is set as text, never parsed as markup
        assert "localStorage" not in text, name  # the token lives in the tab only
