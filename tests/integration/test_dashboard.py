"""The web dashboard in a real browser: Debian's Chromium driven by Playwright (through its
``executable_path``: no browser download) against a live ``ai-admin serve`` and the test
registries.

The ``chromium`` fixture installs Debian's ``chromium`` package when it is missing (as root on
Debian, like the ``promtool`` fixture; it fails otherwise). What the page shows is compared
with what the agent's API says. Screenshots at desktop and phone widths are saved under
``test-artifacts/dashboard/`` (ignored by git) and must not be blank.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import statistics
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
from agent_process import OPERATOR_TOKEN, READ_ONLY_TOKEN, AgentProcess, launch
from dockerenv import AuthRegistry, ImageCleanup, build_random_data_image, only_in_registry
from executor_harness import build_containers
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright
from playwright.sync_api import Request as PageRequest
from playwright.sync_api import Response as PageResponse

from ai_admin.http.dashboard.assets import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.docker

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}  # a phone held upright
WAIT_MS = 60_000
PULL_MB = 48  # enough bytes for several progress events on the way
ACTIONS = "button[data-action]"
# A task's statuses while it runs (ai_admin/queue/models.py).
RUNNING = ["running", "validating", "preparing", "uploading", "downloading", "building", "pulling"]


# -- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's ``chromium``, installed from its package when it is missing."""
    found = shutil.which("chromium")
    if found:
        return Path(found)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            "chromium is missing: install Debian's chromium package (apt-get install -y chromium)",
            pytrace=False,
        )
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*apt, "install", "-y", "--no-install-recommends", "chromium"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:  # the package lists may be missing or stale
        subprocess.run([*apt, "update"], capture_output=True, env=env, check=False)
        done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(f"installing chromium gave no chromium:\n{done.stderr[-2000:]}")
    return Path(found)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as started:
        yield started


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium: Path) -> Iterator[Browser]:
    # Root cannot use Chromium's sandbox; the pages are the agent's own.
    launched = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
    yield launched
    launched.close()


class Watched:
    """A page with everything it logged and asked for."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[ConsoleMessage] = []
        self.errors: list[str] = []
        self.requests: list[PageRequest] = []
        self.refused: list[tuple[str, str, int]] = []  # method, URL, status of each 4xx/5xx
        page.on("console", lambda message: self.console.append(message))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request))
        page.on("response", self._answered)

    def _answered(self, response: PageResponse) -> None:
        if response.status >= 400:
            self.refused.append((response.request.method, response.url, response.status))

    def problems(self) -> list[str]:
        logged = [f"{m.type}: {m.text}" for m in self.console if m.type in ("error", "warning")]
        return logged + self.errors


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Watched]]:
    """``open_page(url, token)``: a new browser context (its own sessionStorage) on the
    dashboard, with the token in the fragment, live on the event stream."""
    contexts = []

    def open_(url: str, token: str, viewport: dict[str, int] = DESKTOP) -> Watched:
        context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        contexts.append(context)
        watched = Watched(context.new_page())
        watched.page.set_default_timeout(WAIT_MS)
        watched.page.goto(f"{url}/#token={token}")
        live(watched.page)
        return watched

    yield open_
    for context in contexts:
        context.close()


def live(page: Page) -> None:
    page.wait_for_selector("#connection[data-state=live]")


# -- the agent's own answers ----------------------------------------------------------------


class AgentApi:
    """The agent's REST API for a test's own checks and set-up (not through the page)."""

    def __init__(self, url: str, token: str = OPERATOR_TOKEN) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.trust_env = False  # never through a proxy from the environment
        self.http.headers["Authorization"] = f"Bearer {token}"

    def cmd(self, command: str, /, **params: Any) -> Any:
        answer = self.http.post(
            f"{self.url}/cmd", json={"action": command, "params": params}, timeout=30
        )
        body = answer.json()
        assert body["success"], body
        return body["data"]

    def submit(self, task_type: str, /, **params: Any) -> str:
        return str(self.cmd(task_type, **params)["task_id"])

    def task(self, task_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.cmd("queue_task_status", task_id=task_id, detailed=True)
        return data


@pytest.fixture
def operator(agent: AgentProcess) -> Iterator[AgentApi]:
    client = AgentApi(agent.url)
    yield client
    client.cmd("queue_resume")


def row(page: Page, task_id: str) -> Any:
    return page.locator(f'tr[data-task-id="{task_id}"]')


def select_tab(page: Page, name: str) -> None:
    page.click(f"#tab-{name}")
    page.wait_for_selector(f'#tab-{name}[aria-selected="true"]')


def card(page: Page, name: str) -> int:
    return int(page.inner_text(f'[data-card="{name}"] [data-value]'))


_GREY_LEVELS = """async (b64) => {
    const image = new Image();
    image.src = "data:image/png;base64," + b64;
    await image.decode();
    const canvas = new OffscreenCanvas(image.width, image.height);
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    const data = context.getImageData(0, 0, image.width, image.height).data;
    const grey = [];
    for (let i = 0; i < data.length; i += 4 * 7) {  // every 7th pixel is plenty
      grey.push(Math.round((data[i] + data[i + 1] + data[i + 2]) / 3));
    }
    return grey;
}"""


def save_screenshot(page: Page, name: str) -> Path:
    """A full-page PNG under test-artifacts/dashboard/, checked not to be blank: its pixels
    vary (a blank or single-colour page has no variance) and they are not all one colour."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    png = page.screenshot(path=str(path), full_page=True)
    # Decoded by the browser in a blank page of its own (the dashboard's policy allows no
    # data: image): PNG to grey levels without an imaging library.
    browser = page.context.browser
    assert browser is not None
    blank = browser.new_page()
    try:
        pixels: list[int] = blank.evaluate(_GREY_LEVELS, base64.b64encode(png).decode())
    finally:
        blank.close()
    assert len(pixels) > 1000, name
    assert statistics.pvariance(pixels) > 100, f"{path} looks blank"
    assert len(set(pixels)) > 20, f"{path} has almost one colour"
    return path


# -- the tests ---------------------------------------------------------------------------------


def test_the_page_loads_under_its_policy_with_no_error_and_nothing_from_another_host(
    agent: AgentProcess, browser: Browser
) -> None:
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    try:
        watched = Watched(context.new_page())
        page = watched.page
        page.set_default_timeout(WAIT_MS)
        response = page.goto(f"{agent.url}/#token={OPERATOR_TOKEN}")
        assert response is not None
        assert response.status == 200
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        live(page)
        page.wait_for_function(  # the cards hold the agent's numbers
            "/^[0-9]+$/.test(document.querySelector('[data-card=total] [data-value]').textContent)"
        )

        # The token left the address bar and the history, and lives in this tab only.
        assert page.url == f"{agent.url}/"
        assert "token" not in page.evaluate("location.href")
        assert page.evaluate("sessionStorage.getItem('ai-admin-token')") == OPERATOR_TOKEN
        assert page.evaluate("localStorage.length") == 0
        assert page.inner_text("#role") == "Operator"
        # Reloaded, the tab keeps its token without asking again.
        page.reload()
        live(page)
        assert page.is_hidden("#login")

        hosts = {re.match(r"^[a-z]+://[^/]+", r.url)[0] for r in watched.requests}  # type: ignore[index]
        assert hosts == {agent.url}
        api = [r for r in watched.requests if r.url.startswith(f"{agent.url}/api/")]
        assert api
        assert all(r.headers.get("authorization") == f"Bearer {OPERATOR_TOKEN}" for r in api)
        assert watched.problems() == []
        assert watched.refused == []
        save_screenshot(page, "desktop-empty")
    finally:
        context.close()


def test_a_real_pull_shows_its_bar_moving_and_ends_completed(
    agent: AgentProcess,
    operator: AgentApi,
    open_page: Callable[..., Watched],
    docker_client: docker.DockerClient,
    open_registry: str,
    image_cleanup: ImageCleanup,
) -> None:
    repository = f"{open_registry}/ai-admin-test/dash-{uuid.uuid4().hex[:8]}"
    tag, ref, _pushed = only_in_registry(docker_client, image_cleanup, repository, PULL_MB)
    watched = open_page(agent.url, OPERATOR_TOKEN)
    page = watched.page
    # Every state the table shows, as it shows it, recorded in the page as it changes.
    page.evaluate(
        """() => {
            window.seen = [];
            const body = document.getElementById("task-rows");
            const record = () => {
              for (const tr of body.querySelectorAll("tr")) {
                window.seen.push({
                  id: tr.dataset.taskId,
                  status: tr.dataset.status,
                  value: tr.querySelector("progress").value,
                  text: tr.querySelector(".progress-text").textContent,
                });
              }
            };
            new MutationObserver(record).observe(body, {childList: true, subtree: true});
        }"""
    )
    page.fill("#pull-image", repository)
    page.fill("#pull-tag", tag)
    page.click("#form-pull button[type=submit]")
    page.wait_for_selector("#submit-result a")
    task_id = page.inner_text("#submit-result a")
    final = wait_finished(operator, task_id)
    assert final["status"]["value"] == "completed", final

    seen = page.evaluate("id => window.seen.filter(s => s.id === id)", task_id)
    moving = [s for s in seen if s["status"] == "downloading" and 0 < s["value"] < 100]
    assert len({s["value"] for s in moving}) >= 2, seen  # the bar moved while bytes came
    shown = next(s["text"] for s in moving if " / " in s["text"])
    assert re.search(r"\d+(\.\d)? [KM]?B / 48\.0 MB", shown), shown  # bytes done of the total
    assert any("/s" in s["text"] for s in moving), seen  # with the rate
    assert any("ETA" in s["text"] for s in moving), seen  # and the time left

    # It leaves the active tab and is found under completed, at 100 %, with its end time.
    row(page, task_id).wait_for(state="detached")
    select_tab(page, "completed")
    done = row(page, task_id)
    assert done.get_attribute("data-status") == "completed"
    assert "completed" in done.locator('[data-label="Status"]').inner_text()
    assert done.locator("progress").evaluate("p => p.value") == 100
    assert done.locator('[data-label="Ended"] time').count() == 1
    assert done.locator('[data-label="Image"]').inner_text() == ref
    assert card(page, "completed") >= 1
    assert watched.problems() == []
    save_screenshot(page, "desktop-completed")


def wait_finished(operator: AgentApi, task_id: str) -> dict[str, Any]:
    """The task's summary once it has finished, read through the agent's own stream."""
    with operator.http.get(
        f"{operator.url}/api/events", params={"task_id": task_id}, stream=True, timeout=120
    ) as stream:
        for _line in stream.iter_lines():
            pass  # a one-task stream ends with the task
    return operator.task(task_id)


def test_a_refused_push_shows_its_error_code_description_and_suggestions(
    agent: AgentProcess,
    operator: AgentApi,
    open_page: Callable[..., Watched],
    docker_client: docker.DockerClient,
    auth_registry: AuthRegistry,
    image_cleanup: ImageCleanup,
) -> None:
    ref = image_cleanup.add(
        f"{auth_registry.address}/ai-admin-test/dash-push-{uuid.uuid4().hex[:8]}:1"
    )
    build_random_data_image(docker_client, ref, size_mb=1)
    watched = open_page(agent.url, OPERATOR_TOKEN)
    page = watched.page
    task_id = operator.submit("docker_push", image_name=ref, max_retries=0)
    final = wait_finished(operator, task_id)
    assert final["status"]["value"] == "failed", final
    error = final["error"]
    assert error["suggestions"]

    select_tab(page, "failed")
    failed = row(page, task_id)
    failed.wait_for()
    assert failed.locator(".error-code").inner_text() == error["code"]
    assert "failed" in failed.locator('[data-label="Status"]').inner_text()
    assert failed.locator(ACTIONS).all_inner_texts() == ["Retry"]  # the one action allowed

    failed.locator('[data-label="Image"] a').click()
    detail = page.locator("#detail")
    detail.wait_for()
    page.wait_for_selector(f'#detail[data-task-id="{task_id}"]')
    assert page.inner_text("#detail-title") == f"push {ref}"
    assert page.inner_text("#detail-error-code") == error["code"]
    assert page.inner_text("#detail-error-description") == error["description"]
    assert page.locator("#detail-suggestions li").all_inner_texts() == error["suggestions"]
    logs = operator.cmd("queue_task_status", task_id=task_id, include_logs=True)["logs"]
    assert logs
    assert page.inner_text("#detail-logs").splitlines() == logs
    assert page.url.endswith(f"#task={task_id}")
    assert watched.problems() == []
    save_screenshot(page, "desktop-failed-push")

    # It has used its retries (none allowed): the button asks before retrying it anyway.
    page.click('#detail-actions button[data-action="retry"]')
    page.wait_for_selector("#confirm[open]")
    assert "used all its retries" in page.inner_text("#confirm-text")
    page.click("#confirm-ok")
    page.wait_for_function(
        "id => document.querySelector('#detail').dataset.taskId === id"
        " && document.querySelector('#detail-fields').textContent.includes('1 of 0')",
        arg=task_id,
    )
    assert operator.task(task_id)["retry"]["retry_count"] == 1


def test_cancel_from_the_button_stops_a_running_build_after_confirmation(
    agent: AgentProcess,
    operator: AgentApi,
    open_page: Callable[..., Watched],
    docker_client: docker.DockerClient,
    busybox_image: str,
) -> None:
    marker = f"dash-{uuid.uuid4().hex[:10]}"
    watched = open_page(agent.url, OPERATOR_TOKEN)
    page = watched.page
    page.fill("#build-dockerfile", f"FROM {busybox_image}\nRUN sleep 120 && echo {marker}\n")
    page.click("#form-build button[type=submit]")
    page.wait_for_selector("#submit-result a")
    task_id = page.inner_text("#submit-result a")
    building = row(page, task_id)
    page.wait_for_selector(f'tr[data-task-id="{task_id}"][data-status="building"]')
    assert building.locator(ACTIONS).all_inner_texts() == ["Pause", "Cancel"]

    # Cancel asks first; keeping the task leaves it building.
    building.locator('button[data-action="cancel"]').click()
    page.wait_for_selector("#confirm[open]")
    assert "Cancel task" in page.inner_text("#confirm-text")
    page.click("#confirm-cancel")
    assert page.is_hidden("#confirm")
    assert operator.task(task_id)["status"]["value"] == "building"

    row(page, task_id).locator('button[data-action="cancel"]').click()
    page.click("#confirm-ok")
    final = wait_finished(operator, task_id)
    assert final["status"]["value"] == "cancelled", final
    row(page, task_id).wait_for(state="detached")  # it left the active tab
    select_tab(page, "failed")
    assert row(page, task_id).get_attribute("data-status") == "cancelled"
    deadline_checks = 0
    while build_containers(docker_client, marker) and deadline_checks < 100:
        page.wait_for_timeout(100)  # the engine removes the stopped step's container
        deadline_checks += 1
    assert build_containers(docker_client, marker) == []
    assert watched.problems() == []


def test_each_state_shows_only_its_actions_and_a_read_only_token_sees_none(
    agent: AgentProcess, operator: AgentApi, open_page: Callable[..., Watched]
) -> None:
    operator.cmd("queue_pause")  # nothing starts: the tasks stay in the states made here
    unreachable = f"127.0.0.1:{closed_port()}/ai-admin-test/dash-wait"
    waiting = operator.submit("docker_pull", image_name=f"{unreachable}-a", tag="1")
    held = operator.submit("docker_pull", image_name=f"{unreachable}-b", tag="1")
    operator.cmd("queue_manage", action="pause", task_id=held)
    try:
        writer = open_page(agent.url, OPERATOR_TOKEN).page
        row(writer, held).wait_for()
        assert row(writer, waiting).locator(ACTIONS).all_inner_texts() == ["Pause", "Cancel"]
        assert row(writer, held).locator(ACTIONS).all_inner_texts() == ["Resume", "Cancel"]
        assert writer.is_visible("#queue-resume")  # the queue is paused: resume is offered
        assert writer.is_hidden("#queue-pause")
        assert writer.is_visible("#form-pull")
        # A waiting task is paused from its button without a question, and resumed.
        row(writer, waiting).locator('button[data-action="pause"]').click()
        writer.wait_for_selector(f'tr[data-task-id="{waiting}"][data-status="paused"]')
        assert operator.task(waiting)["status"]["value"] == "paused"
        assert row(writer, waiting).locator(ACTIONS).all_inner_texts() == ["Resume", "Cancel"]
        row(writer, waiting).locator('button[data-action="resume"]').click()
        writer.wait_for_selector(f'tr[data-task-id="{waiting}"][data-status="pending"]')
        assert operator.task(waiting)["status"]["value"] == "pending"

        reader = open_page(agent.url, READ_ONLY_TOKEN, PHONE)
        page = reader.page
        row(page, held).wait_for()
        assert page.inner_text("#role") == "Read-only"
        assert page.locator(ACTIONS).count() == 0
        for control in ("#queue-pause", "#queue-resume", "#queue-clear", "#form-pull"):
            assert page.is_hidden(control), control
        assert page.locator("form.submit-form").evaluate_all(
            "forms => forms.every(f => f.offsetParent === null)"
        )
        visible = page.locator("button:visible").all_inner_texts()
        assert set(visible) <= {"Active", "Completed", "Failed", "Merged", "Forget token"}
        page.click(f'tr[data-task-id="{held}"] [data-label="Image"] a')
        page.wait_for_selector(f'#detail[data-task-id="{held}"]')
        assert page.locator("#detail-actions button").count() == 0
        # The one refusal: the probe that told the page its token may only read.
        assert reader.refused == [("POST", f"{agent.url}/cmd", 403)]
        assert reader.problems() == [
            "error: Failed to load resource: the server responded with a status of 403 (Forbidden)"
        ]
        save_screenshot(page, "phone-read-only")
        # The phone layout: no sideways scrolling, the table shown as one card per task.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.locator("thead").evaluate("h => h.getBoundingClientRect().height") <= 1
    finally:
        for task_id in (waiting, held):
            operator.cmd("queue_manage", action="cancel", task_id=task_id)


def test_a_merged_task_explains_itself_and_links_to_the_task_it_joined(
    agent: AgentProcess, operator: AgentApi, open_page: Callable[..., Watched]
) -> None:
    operator.cmd("queue_pause")
    image = f"127.0.0.1:{closed_port()}/ai-admin-test/dash-merge"
    first = operator.submit("docker_pull", image_name=image, tag="1")
    twin = operator.cmd("docker_pull", image_name=image, tag="1")
    assert twin["merged_into"] == first
    try:
        watched = open_page(agent.url, OPERATOR_TOKEN, PHONE)
        page = watched.page
        select_tab(page, "merged")
        merged = row(page, twin["task_id"])
        assert merged.get_attribute("data-status") == "merged"
        assert merged.locator(ACTIONS).count() == 0  # a merged task has no action
        merged.locator('[data-label="Image"] a').click()
        banner = page.locator("#merged-banner")
        banner.wait_for()
        assert "joined it to that task" in banner.inner_text()
        assert banner.locator("a").get_attribute("href") == f"#task={first}"
        save_screenshot(page, "phone-merged")
        banner.locator("a").click()
        page.wait_for_selector(f'#detail[data-task-id="{first}"]')
        assert page.is_hidden("#merged-banner")
        assert watched.problems() == []
    finally:
        operator.cmd("queue_manage", action="cancel", task_id=first)


def test_the_token_is_asked_for_once_per_tab_and_a_wrong_one_is_refused(
    agent: AgentProcess, browser: Browser
) -> None:
    context = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    try:
        watched = Watched(context.new_page())
        page = watched.page
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{agent.url}/")
        page.wait_for_selector("#login")
        assert page.is_hidden("#dashboard")
        assert page.get_attribute("#token-input", "type") == "password"
        assert page.inner_text('label[for="token-input"]') == "Bearer token"

        page.fill("#token-input", "not-the-token")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#login-error:not([hidden])")
        assert "AUTH_INVALID_TOKEN" in page.inner_text("#login-error")
        assert page.evaluate("sessionStorage.length") == 0

        page.fill("#token-input", OPERATOR_TOKEN)
        page.click("#login-form button[type=submit]")
        live(page)
        assert page.is_hidden("#login")
        assert page.evaluate("sessionStorage.getItem('ai-admin-token')") == OPERATOR_TOKEN
        page.reload()  # the same tab: not asked again
        live(page)
        assert page.is_hidden("#login")

        other = context.new_page()  # another tab has its own session: asked again
        other.goto(f"{agent.url}/")
        other.wait_for_selector("#login")

        page.click("#sign-out")
        page.wait_for_selector("#login")
        assert page.evaluate("sessionStorage.length") == 0
    finally:
        context.close()


def test_the_queue_is_paused_resumed_and_cleared_from_its_buttons(
    agent: AgentProcess, operator: AgentApi, open_page: Callable[..., Watched]
) -> None:
    watched = open_page(agent.url, OPERATOR_TOKEN)
    page = watched.page
    page.click("#queue-pause")
    page.wait_for_selector('#queue-state[data-paused="true"]')
    assert operator.cmd("queue_status")["queue"]["paused"] is True
    assert page.is_hidden("#queue-pause")
    page.click("#queue-resume")
    page.wait_for_selector('#queue-state[data-paused="false"]')
    assert operator.cmd("queue_status")["queue"]["paused"] is False

    completed = operator.cmd("queue_list_tasks", status=["completed", "merged"])["total"]
    assert completed >= 1  # the pull and the merged twin of the tests above
    page.click("#queue-clear")
    page.wait_for_selector("#confirm[open]")
    page.click("#confirm-cancel")  # asked first: keeping them deletes nothing
    assert operator.cmd("queue_list_tasks", status=["completed", "merged"])["total"] == completed
    page.click("#queue-clear")
    page.click("#confirm-ok")
    page.wait_for_selector(f'#notice:text("Deleted {completed} finished tasks.")')
    assert operator.cmd("queue_list_tasks", status=["completed", "merged"])["total"] == 0
    page.wait_for_function(
        "document.querySelector('[data-card=completed] [data-value]').textContent === '0'"
    )
    assert watched.problems() == []


@pytest.mark.parametrize("seen_an_event", [True, False], ids=["resumed", "without-an-id"])
def test_after_the_agent_restarts_the_page_catches_up(
    tmp_path: Path, open_page: Callable[..., Watched], seen_an_event: bool
) -> None:
    """With an event seen, the page reconnects with its Last-Event-ID and the new agent,
    which does not have the events after it, answers with ``reset``: the page reads the state
    again. With none seen, it has no id to send, so it reads the state again itself."""
    port = str(closed_port())  # free now: the agent takes it, and takes it again
    data = tmp_path / "data"
    agent = launch(data, args=["--port", port])
    try:
        operator = AgentApi(agent.url)
        operator.cmd("queue_pause")  # kept across the restart
        image = {"image_name": "127.0.0.1:1/dash/restart", "tag": "1"}
        if not seen_an_event:  # the page finds it in the list it reads, with no event
            task_id = operator.submit("docker_pull", **image)
        watched = open_page(agent.url, OPERATOR_TOKEN)
        page = watched.page
        if seen_an_event:  # submitted with the page open: it learns of it from an event
            task_id = operator.submit("docker_pull", **image)
        row(page, task_id).wait_for()
        assert card(page, "failed") == 0

        # The page may not reconnect until the test lets it: the change below is made while
        # it is away, and the new agent no longer has the events it missed.
        reconnects: list[PageRequest] = []
        page.route("**/api/events*", lambda route: route.abort())
        assert agent.stop() == 0
        page.wait_for_selector("#connection[data-state=reconnecting]")
        agent = launch(data, args=["--port", port])
        assert agent.url == operator.url
        operator.cmd("queue_manage", action="cancel", task_id=task_id)
        page.wait_for_timeout(500)  # an aborted attempt or two, not a wait for an outcome
        assert row(page, task_id).get_attribute("data-status") == "pending"  # not told yet

        page.on("request", lambda r: reconnects.append(r) if "/api/events" in r.url else None)
        page.unroute("**/api/events*")
        live(page)
        row(page, task_id).wait_for(state="detached")  # no longer active
        page.wait_for_function(
            "document.querySelector('[data-card=failed] [data-value]').textContent === '1'"
        )
        assert bool(reconnects[0].headers.get("last-event-id")) is seen_an_event
        select_tab(page, "failed")
        assert row(page, task_id).get_attribute("data-status") == "cancelled"
    finally:
        assert agent.stop() == 0


# -- named queues, batches and schedules -------------------------------------------------------


def card_of(page: Page, kind: str, key: str) -> Any:
    """The card of one named queue (kind ``queue``, key its name), batch or schedule (its id)."""
    attribute = {"queue": "data-queue", "batch": "data-batch-id", "schedule": "data-schedule-id"}
    return page.locator(f'li.object[{attribute[kind]}="{key}"]')


def fact(card: Any, field: str) -> str:
    """The text a card shows for one field of the agent's view (``data-field``)."""
    return str(card.locator(f'[data-field="{field}"]').inner_text())


def batch_shown(page: Page, batch_id: str) -> dict[str, Any]:
    """A batch's card as the page shows it: state, progress and counts."""
    shown: dict[str, Any] = card_of(page, "batch", batch_id).evaluate(
        """li => ({
            state: li.dataset.state,
            progress: li.querySelector("progress").value,
            counts: li.querySelector('[data-field="counts"]').textContent,
            position: li.querySelector('[data-field="position"]')?.textContent ?? null,
        })"""
    )
    return shown


def batch_agrees(page: Page, operator: AgentApi, batch_id: str) -> dict[str, Any]:
    """The card agrees with GET /api/batches/{id}; returns the agent's view."""
    answer = operator.http.get(f"{operator.url}/api/batches/{batch_id}", timeout=30).json()
    assert answer["success"], answer
    agent_view: dict[str, Any] = answer["data"]
    shown = batch_shown(page, batch_id)
    assert shown["state"] == agent_view["state"]
    assert shown["progress"] == pytest.approx(agent_view["progress"])
    counts = " · ".join(f"{n} {status}" for status, n in agent_view["counts"].items())
    assert shown["counts"] == f"{len(agent_view['task_ids'])}: {counts}"
    position = agent_view["position"]
    assert shown["position"] == (
        None if position is None else f"{position} (runs next)" if position == 1 else str(position)
    )
    return agent_view


def object_buttons(page: Page, kind: str, key: str) -> list[str]:
    return list(card_of(page, kind, key).locator("button[data-op]").all_inner_texts())


def queue_view(operator: AgentApi, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        q for q in operator.cmd("queue_list")["queues"] if q["name"] == name
    )
    return found


def test_a_named_queue_shows_its_settings_counts_and_tasks_and_pauses_from_its_button(
    agent: AgentProcess, operator: AgentApi, open_page: Callable[..., Watched]
) -> None:
    name = f"dash-q-{uuid.uuid4().hex[:6]}"
    operator.cmd("queue_create", name=name, max_concurrent=2, max_queue_size=50)
    elsewhere = operator.submit(  # in the default queue, paused by its own task pause
        "docker_pull", image_name=f"127.0.0.1:{closed_port()}/dash/elsewhere", tag="1"
    )
    operator.cmd("queue_manage", action="pause", task_id=elsewhere)
    try:
        watched = open_page(agent.url, OPERATOR_TOKEN)
        page = watched.page
        queue = card_of(page, "queue", name)
        queue.wait_for()
        assert fact(queue, "running") == "0 of 2 (own)"
        assert fact(queue, "waiting") == "0 of 50 (own)"
        settings = queue_view(operator, name)["limits"]
        assert fact(queue, "max_retries") == str(settings["max_retries"])  # the agent's own
        assert "running" in queue.locator(".status").inner_text()
        assert object_buttons(page, "queue", name) == ["Pause"]

        queue.locator('button[data-op="pause"]').click()
        page.wait_for_selector(f'li.object[data-queue="{name}"][data-paused="true"]')
        assert queue_view(operator, name)["paused"] is True
        assert object_buttons(page, "queue", name) == ["Resume"]
        assert card_of(page, "queue", "default").get_attribute("data-paused") == "false"

        # A task submitted elsewhere into the paused queue: its count follows the events.
        mine = operator.submit(
            "docker_pull", image_name=f"127.0.0.1:{closed_port()}/dash/mine", tag="1", queue=name
        )
        page.wait_for_function(
            "name => document.querySelector(`li.object[data-queue='${name}']"
            " [data-field=waiting]`).textContent === '1 of 50 (own)'",
            arg=name,
        )
        # Its link filters the task list to the queue: the default queue's task leaves it.
        row(page, elsewhere).wait_for()
        queue.locator("a[data-show-queue]").click()
        row(page, mine).wait_for()
        row(page, elsewhere).wait_for(state="detached")
        assert page.input_value("#task-queue") == name
        shown = page.locator("#task-rows tr")
        assert shown.locator('[data-label="Queue"]').all_inner_texts() == [name]
        asked = [r.url for r in watched.requests if "/api/tasks?" in r.url]
        assert f"queue={name}" in asked[-1]
        page.select_option("#task-queue", "")  # every queue again
        row(page, elsewhere).wait_for()

        # A change another client makes shows through its own event (no task moved).
        operator.cmd("queue_configure", queue=name, max_concurrent=3)
        page.wait_for_function(
            "name => document.querySelector(`li.object[data-queue='${name}']"
            " [data-field=running]`).textContent === '0 of 3 (own)'",
            arg=name,
        )

        operator.cmd("queue_manage", action="cancel", task_id=mine)
        queue.locator('button[data-op="resume"]').click()
        page.wait_for_selector(f'li.object[data-queue="{name}"][data-paused="false"]')
        assert queue_view(operator, name)["paused"] is False
        assert watched.problems() == []
    finally:
        if operator.task(elsewhere)["status"]["value"] in ("pending", "paused"):
            operator.cmd("queue_manage", action="cancel", task_id=elsewhere)
        delete_queue(operator, name)


def test_a_batch_of_real_pulls_shows_its_state_line_and_progress_as_the_agent_does(
    agent: AgentProcess,
    operator: AgentApi,
    open_page: Callable[..., Watched],
    docker_client: docker.DockerClient,
    open_registry: str,
    image_cleanup: ImageCleanup,
) -> None:
    name = f"dash-b-{uuid.uuid4().hex[:6]}"
    operator.cmd("queue_create", name=name, max_concurrent=1)
    repository = f"{open_registry}/ai-admin-test/dash-batch-{uuid.uuid4().hex[:8]}"
    pulls = [
        {"action": "docker_pull", "params": {"image_name": repository, "tag": tag}}
        for tag, _ref, _pushed in (
            only_in_registry(docker_client, image_cleanup, repository, 16) for _ in range(2)
        )
    ]
    writer = open_page(agent.url, OPERATOR_TOKEN)
    reader = open_page(agent.url, READ_ONLY_TOKEN, PHONE)  # a second page watching the same
    page = writer.page
    # Every progress value the first batch's card shows, recorded in the page as it changes.
    page.evaluate(
        """() => {
            window.batchProgress = [];
            const list = document.getElementById("batch-list");
            new MutationObserver(() => {
              for (const bar of list.querySelectorAll("li[data-batch-id] progress")) {
                window.batchProgress.push([bar.closest("li").dataset.batchId, bar.value]);
              }
            }).observe(list, {childList: true, subtree: true});
        }"""
    )
    operator.cmd("queue_pause", queue=name)  # the first batch runs, but none of its tasks yet
    first = operator.cmd("batch_submit", name="release", queue=name, tasks=pulls)["batch_id"]
    second = operator.cmd("batch_submit", name="after", queue=name, tasks=pulls[:1])["batch_id"]
    try:
        # Made through the API with the pages open: both learn of them from events.
        for shown in (page, reader.page):
            card_of(shown, "batch", second).wait_for()
        assert batch_agrees(page, operator, first)["state"] == "running"
        assert batch_agrees(page, operator, second)["position"] == 1  # next in line
        assert fact(card_of(page, "batch", second), "queue") == name
        assert object_buttons(page, "batch", first) == ["Stop", "Cancel"]
        assert object_buttons(page, "batch", second) == ["Stop", "Cancel", "Remove"]
        assert card_of(reader.page, "batch", first).locator("button").count() == 0

        card_of(page, "batch", first).locator('button[data-op="stop"]').click()
        page.wait_for_selector(f'li[data-batch-id="{first}"][data-state="stopped"]')
        assert batch_agrees(page, operator, first)["state"] == "stopped"
        assert object_buttons(page, "batch", first) == ["Start", "Cancel", "Remove"]
        reader.page.wait_for_selector(f'li[data-batch-id="{first}"][data-state="stopped"]')
        # One of its tasks paused and resumed elsewhere: no batch event, only the task's own
        # events, and the card's counts follow them.
        counts = f'li[data-batch-id="{first}"] [data-field="counts"]'
        held = operator.cmd("batch_status", batch_id=first)["task_ids"][0]
        operator.cmd("queue_manage", action="pause", task_id=held)
        page.wait_for_selector(f'{counts}:text("1 paused")')
        assert batch_agrees(page, operator, first)["counts"] == {"pending": 1, "paused": 1}
        operator.cmd("queue_manage", action="resume", task_id=held)
        page.wait_for_selector(f'{counts}:text-is("2: 2 pending")')
        batch_agrees(page, operator, first)

        operator.cmd("queue_resume", queue=name)  # stopped: nothing of it starts, nor the next
        assert batch_agrees(page, operator, second)["state"] == "queued"

        # Cancel asks first; keeping it changes nothing.
        card_of(page, "batch", first).locator('button[data-op="cancel"]').click()
        page.wait_for_selector("#confirm[open]")
        assert "Cancel batch release?" in page.inner_text("#confirm-text")
        page.click("#confirm-cancel")
        assert operator.cmd("batch_status", batch_id=first)["state"] == "stopped"

        card_of(page, "batch", first).locator('button[data-op="start"]').click()
        # It runs its real pulls, then the next batch is promoted and runs too.
        for batch_id in (first, second):
            page.wait_for_selector(
                f'li[data-batch-id="{batch_id}"][data-state="completed"]', timeout=120_000
            )
            done = batch_agrees(page, operator, batch_id)
            assert done["progress"] == 100
            assert set(done["counts"]) == {"completed"}
            assert object_buttons(page, "batch", batch_id) == ["Remove"]
        reader.page.wait_for_selector(f'li[data-batch-id="{second}"][data-state="completed"]')
        seen = [
            value for batch_id, value in page.evaluate("window.batchProgress") if batch_id == first
        ]
        assert seen == sorted(seen), seen  # it only rose
        assert seen[-1] == 100, seen
        save_screenshot(page, "desktop-orchestration")

        # Remove asks first, then the batch leaves both pages.
        card_of(page, "batch", second).locator('button[data-op="remove"]').click()
        page.click("#confirm-ok")
        card_of(page, "batch", second).wait_for(state="detached")
        card_of(reader.page, "batch", second).wait_for(state="detached")
        assert second not in [b["batch_id"] for b in operator.cmd("batch_list")["batches"]]
        assert writer.problems() == []
    finally:
        operator.cmd("queue_resume", queue=name)
        for batch_id in (first, second):
            answer = operator.http.get(f"{operator.url}/api/batches/{batch_id}", timeout=30)
            if answer.ok and answer.json()["data"]["state"] in ("queued", "running", "stopped"):
                operator.cmd("batch_cancel", batch_id=batch_id)
        delete_queue(operator, name)


def test_a_schedule_shows_its_next_run_then_its_last_task_as_it_fires_and_pauses_from_its_button(
    agent: AgentProcess,
    operator: AgentApi,
    open_page: Callable[..., Watched],
    docker_client: docker.DockerClient,
    open_registry: str,
    image_cleanup: ImageCleanup,
) -> None:
    repository = f"{open_registry}/ai-admin-test/dash-sched-{uuid.uuid4().hex[:8]}"
    tag, ref, _pushed = only_in_registry(docker_client, image_cleanup, repository, 1)
    name = f"dash-s-{uuid.uuid4().hex[:6]}"
    operator.cmd("queue_create", name=name)
    operator.cmd("queue_pause", queue=name)  # the firing's task waits until the test says
    watched = open_page(agent.url, OPERATOR_TOKEN)
    page = watched.page
    page.evaluate("window.notReloaded = true")
    pull = {"image_name": repository, "tag": tag, "queue": name}
    made = operator.cmd(
        "schedule_create",
        name="dash every 5 s",
        interval_s=5,
        command={"action": "docker_pull", "params": pull},
    )
    schedule_id = made["schedule_id"]
    outcome = f'li[data-schedule-id="{schedule_id}"] [data-field="last_outcome"]'
    try:
        schedule = card_of(page, "schedule", schedule_id)
        schedule.wait_for()  # created through the API: the page learns of it from an event
        assert fact(schedule, "trigger") == "every 5s"
        assert fact(schedule, "command") == f"pull {ref}"
        next_run = schedule.locator('[data-field="next_run_at"] time').get_attribute("datetime")
        assert next_run is not None
        assert parse_iso(next_run) == pytest.approx(made["next_run_at"], abs=0.001)
        assert schedule.locator('[data-field="last_task_id"]').count() == 0  # not fired yet
        assert object_buttons(page, "schedule", schedule_id) == ["Pause", "Delete"]

        # It fires: the page shows the task it submitted, waiting in its paused queue, as the
        # event comes (the same page: never reloaded). Paused from its button, it fires no more.
        page.wait_for_selector(f'{outcome} [data-status="pending"]')
        schedule.locator('button[data-op="pause"]').click()
        page.wait_for_selector(f'li[data-schedule-id="{schedule_id}"][data-state="paused"]')
        paused = operator.cmd("schedule_get", schedule_id=schedule_id)
        assert paused["paused"] is True
        assert object_buttons(page, "schedule", schedule_id) == ["Resume", "Delete"]
        assert fact(schedule, "next_run_at") == "none"
        task_id = paused["last_task_id"]
        assert fact(schedule, "last_task_id") == task_id
        assert fact(schedule, "runs") == str(paused["runs"]) == "1"
        assert paused["last_outcome"]["status"] == "pending"

        # The task runs its real pull: the outcome follows the task's own events. (The page
        # reads the list once more, a moment after the schedule_paused event: let that pass
        # first, so that what it shows next comes from the task's events alone.)
        page.wait_for_timeout(1000)
        operator.cmd("queue_resume", queue=name)
        page.wait_for_selector(f'{outcome} [data-status="completed"]')
        assert operator.cmd("schedule_get", schedule_id=schedule_id)["last_outcome"] == {
            "task_id": task_id,
            "status": "completed",
            "merged_into": None,
            "error_code": None,
        }
        assert page.evaluate("window.notReloaded") is True

        schedule.locator('[data-field="last_task_id"] a').click()  # that task's detail
        page.wait_for_selector(f'#detail[data-task-id="{task_id}"]')
        assert page.inner_text("#detail-title") == f"pull {ref}"
        assert watched.problems() == []

        schedule.locator('button[data-op="delete"]').click()
        page.wait_for_selector("#confirm[open]")
        assert "Delete schedule dash every 5 s?" in page.inner_text("#confirm-text")
        page.click("#confirm-ok")
        schedule.wait_for(state="detached")
        assert schedule_id not in [
            s["schedule_id"] for s in operator.cmd("schedule_list")["schedules"]
        ]
    finally:
        if schedule_id in [s["schedule_id"] for s in operator.cmd("schedule_list")["schedules"]]:
            operator.cmd("schedule_delete", schedule_id=schedule_id)
        delete_queue(operator, name)


def test_a_read_only_token_sees_queues_batches_and_schedules_with_no_action_button(
    agent: AgentProcess, operator: AgentApi, open_page: Callable[..., Watched]
) -> None:
    name = f"dash-r-{uuid.uuid4().hex[:6]}"
    operator.cmd("queue_create", name=name, max_concurrent=1)
    operator.cmd("queue_pause", queue=name)  # the batch's task stays waiting
    pull = {"action": "docker_pull", "params": {"image_name": "127.0.0.1:1/dash/ro", "tag": "1"}}
    batch_id = operator.cmd("batch_submit", name="read me", queue=name, tasks=[pull])["batch_id"]
    schedule_id = operator.cmd(
        "schedule_create", name="dash hourly", interval_s=3600, command=pull
    )["schedule_id"]
    try:
        for viewport, shot in (
            (PHONE, "phone-orchestration-read-only"),
            (DESKTOP, "desktop-orchestration-read-only"),
        ):
            reader = open_page(agent.url, READ_ONLY_TOKEN, viewport)
            page = reader.page
            for kind, key in (("queue", name), ("batch", batch_id), ("schedule", schedule_id)):
                card_of(page, kind, key).wait_for()
            assert card_of(page, "queue", name).get_attribute("data-paused") == "true"
            assert card_of(page, "batch", batch_id).get_attribute("data-state") == "running"
            assert fact(card_of(page, "schedule", schedule_id), "trigger") == "every 1h 00m"
            for section in ("#queues", "#batches", "#schedules"):
                assert page.locator(f"{section} button").count() == 0, section
            assert page.locator(f'a[data-show-queue="{name}"]').count() == 1  # reading is fine
            assert reader.refused == [("POST", f"{agent.url}/cmd", 403)]  # the role probe only
            save_screenshot(page, shot)
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    finally:
        operator.cmd("schedule_delete", schedule_id=schedule_id)
        operator.cmd("batch_cancel", batch_id=batch_id)
        delete_queue(operator, name)


def delete_queue(operator: AgentApi, name: str) -> None:
    """Cancel what is left unfinished in a test's named queue, then delete it."""
    unfinished = operator.cmd(
        "queue_list_tasks", queue=name, status=["pending", "paused", *RUNNING]
    )
    for task in unfinished["tasks"]:
        operator.cmd("queue_manage", action="cancel", task_id=task["id"])
    operator.cmd("queue_delete", queue=name)


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
