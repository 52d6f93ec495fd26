"""``/metrics`` as Prometheus reads it, from a real ``ai-admin serve`` after real Docker work.

The scrape is checked by ``promtool check metrics`` (Debian's ``prometheus`` package: the
``promtool`` fixture installs it when it is missing, as root on Debian, and fails otherwise)
and by its values: totals by task type, stored tasks by status and type, and histogram counts
after known tasks. OpenMetrics is served when asked for, and parsed by prometheus-client's own
strict parser. Two agents in one process each have their own registry.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from agent_process import OPERATOR_TOKEN, AgentProcess
from dockerenv import ImageCleanup
from http_client import Api, client
from inprocess_agent import serve_agent
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from ai_admin import __version__

UNREACHABLE = "127.0.0.1:1/ai-admin-metrics/unreachable"  # refused at once: a quick failure
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
_WAIT_S = 120.0
_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@pytest.fixture(scope="session")
def promtool() -> Path:
    """``promtool``, installed from Debian's ``prometheus`` package when it is missing."""
    found = shutil.which("promtool")
    if found:
        return Path(found)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            "promtool is missing: install Debian's prometheus package "
            "(apt-get install -y --no-install-recommends prometheus)",
            pytrace=False,
        )
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=180"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*apt, "install", "-y", "--no-install-recommends", "prometheus"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:  # the package lists may be missing or stale
        subprocess.run([*apt, "update"], capture_output=True, env=env, check=False)
        done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(f"installing prometheus gave no promtool:\n{done.stderr[-2000:]}")
    return Path(found)


def check_with_promtool(promtool: Path, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the text format, by name and label set."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample: {line!r}"
        labels = frozenset(_LABEL.findall(match["labels"] or ""))
        out[match["name"], labels] = float(match["value"])
    return out


def value(scrape: dict[Any, float], name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


async def scrape(api: Api, accept: str | None = None) -> tuple[str, str]:
    headers = {"Accept": accept} if accept else None
    answer = await api.request("GET", "/metrics", headers=headers, envelope=False)
    assert answer.status == 200, answer.text[:500]
    return answer.text, answer.headers["Content-Type"]


async def _known_work(api: Api, busybox_image: str, image_cleanup: ImageCleanup) -> list[str]:
    """One build that completes and two pulls that fail, run to their end."""
    ref = image_cleanup.add(f"ai-admin-it/metrics:{uuid.uuid4().hex[:10]}")
    build = await api.ok(
        "docker_build",
        dockerfile=f"FROM {busybox_image}\nRUN echo metrics\n",
        tags=[ref],
        network_mode="none",
    )
    pulls = [
        await api.ok("docker_pull", image_name=UNREACHABLE, tag=f"t{n}", max_retries=0)
        for n in range(2)
    ]
    ids = [build["task_id"], *(p["task_id"] for p in pulls)]
    ends = [await api.finished(task_id, timeout_s=_WAIT_S) for task_id in ids]
    assert [e["status"]["value"] for e in ends] == ["completed", "failed", "failed"], ends
    return ids


async def test_a_scrape_after_real_work_passes_promtool_and_counts_by_type(
    agent: AgentProcess, promtool: Path, busybox_image: str, image_cleanup: ImageCleanup
) -> None:
    async with client(agent.url, OPERATOR_TOKEN) as api:
        await _known_work(api, busybox_image, image_cleanup)
        await api.ok("queue_create", name="nightly", max_concurrent=2)
        text, content_type = await scrape(api)

    checked = check_with_promtool(promtool, text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == ""
    assert content_type.startswith("text/plain; version=0.0.4")

    got = samples(text)
    assert all(name.startswith("ai_admin_") for name, _ in got)
    assert not any("queue_queue" in name for name, _ in got)
    assert (
        value(
            got,
            "ai_admin_build_info",
            version=__version__,
            python_version=platform.python_version(),
        )
        == 1
    )
    assert value(got, "ai_admin_process_resident_memory_bytes") > 0
    assert value(got, "ai_admin_docker_engine_up") == 1
    # Totals by type, since the agent started (this module's agent ran only these tasks).
    assert value(got, "ai_admin_tasks_submitted_total", task_type="docker_build") == 1
    assert value(got, "ai_admin_tasks_submitted_total", task_type="docker_pull") == 2
    assert value(got, "ai_admin_tasks_submitted_total", task_type="docker_push") == 0
    finished = "ai_admin_tasks_finished_total"
    assert value(got, finished, task_type="docker_build", status="completed") == 1
    assert value(got, finished, task_type="docker_pull", status="failed") == 2
    stored = "ai_admin_stored_tasks"
    assert value(got, stored, status="completed", task_type="docker_build") == 1
    assert value(got, stored, status="failed", task_type="docker_pull") == 2
    # Histograms: one observation per run, by type (wait) and by type and outcome (run).
    wait = "ai_admin_task_wait_seconds"
    assert value(got, f"{wait}_count", task_type="docker_build") == 1
    assert value(got, f"{wait}_count", task_type="docker_pull") == 2
    assert value(got, f"{wait}_count", task_type="docker_push") == 0
    run = "ai_admin_task_run_seconds"
    assert value(got, f"{run}_count", task_type="docker_build", outcome="completed") == 1
    assert value(got, f"{run}_count", task_type="docker_pull", outcome="failed") == 2
    assert value(got, f"{run}_sum", task_type="docker_build", outcome="completed") > 0
    inf = value(got, f"{run}_bucket", task_type="docker_pull", outcome="failed", le="+Inf")
    assert inf == 2
    _assert_cumulative(got, f"{run}_bucket", task_type="docker_build", outcome="completed")
    # The totals since the store was created, as before.
    assert value(got, "ai_admin_tasks_enqueued_total") == 3
    assert value(got, "ai_admin_tasks_failed_total") == 2
    assert value(got, "ai_admin_queue_waiting_tasks") == 0
    # Each named queue by its name.
    assert value(got, "ai_admin_named_queue_max_concurrent", queue="nightly") == 2
    assert value(got, "ai_admin_named_queue_max_concurrent", queue="default") == 4
    assert value(got, "ai_admin_named_queue_paused", queue="nightly") == 0
    assert value(got, "ai_admin_named_queue_running_tasks", queue="default") == 0
    assert value(got, "ai_admin_named_queue_waiting_tasks", queue="nightly") == 0


def _assert_cumulative(got: dict[Any, float], name: str, **labels: str) -> None:
    buckets = sorted(
        (float(dict(key)["le"]), n)
        for (sample, key), n in got.items()
        if sample == name and {k: v for k, v in key if k != "le"} == labels
    )
    assert len(buckets) > 10, buckets
    counts = [n for _, n in buckets]
    assert counts == sorted(counts), buckets  # cumulative: never decreasing
    assert buckets[-1][0] == float("inf")


async def test_openmetrics_when_the_client_asks_for_it(agent: AgentProcess) -> None:
    async with client(agent.url, OPERATOR_TOKEN) as api:
        text, content_type = await scrape(api, accept=f"{OPENMETRICS},text/plain;q=0.5")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}  # strict: raises
    assert families["ai_admin_build"].type == "info"
    assert families["ai_admin_tasks_submitted"].type == "counter"
    assert families["ai_admin_task_run_seconds"].type == "histogram"
    assert families["ai_admin_task_wait_seconds"].type == "histogram"


async def test_two_agents_in_one_process_each_serve_their_own_metrics(tmp_path: Path) -> None:
    async with (
        serve_agent(tmp_path / "a") as first,
        serve_agent(tmp_path / "b") as second,
        client(first.url, OPERATOR_TOKEN) as api_a,
        client(second.url, OPERATOR_TOKEN) as api_b,
    ):
        done = await api_a.ok("docker_pull", image_name="only-in-a", tag="1")
        await api_a.finished(done["task_id"])
        a = samples((await scrape(api_a))[0])
        b = samples((await scrape(api_b))[0])
    assert value(a, "ai_admin_tasks_submitted_total", task_type="docker_pull") == 1
    assert value(b, "ai_admin_tasks_submitted_total", task_type="docker_pull") == 0
    assert (
        value(a, "ai_admin_task_run_seconds_count", task_type="docker_pull", outcome="completed")
        == 1
    )
    assert value(b, "ai_admin_process_open_fds") > 0


async def test_schedules_show_their_states_firings_and_lateness(
    agent: AgentProcess, promtool: Path
) -> None:
    command = {
        "action": "docker_pull",
        "params": {"image_name": UNREACHABLE, "tag": "scheduled", "max_retries": 0},
    }
    async with client(agent.url, OPERATOR_TOKEN) as api:
        made = await api.ok("schedule_create", name="metrics", interval_s=1, command=command)
        sid = made["schedule_id"]
        try:
            while (await api.ok("schedule_get", schedule_id=sid))["runs"] < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # the test's deadline bounds it
            await api.ok("schedule_pause", schedule_id=sid)
            view = await api.ok("schedule_get", schedule_id=sid)
            text, _ = await scrape(api)
        finally:
            await api.ok("schedule_delete", schedule_id=sid)

    checked = check_with_promtool(promtool, text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    got = samples(text)
    assert value(got, "ai_admin_schedules", state="paused") == 1
    assert value(got, "ai_admin_schedules", state="active") == 0
    firings = {
        outcome: value(got, "ai_admin_schedule_firings_total", outcome=outcome)
        for outcome in ("submitted", "merged", "refused", "folded")
    }
    assert firings["submitted"] + firings["merged"] == view["runs"], firings
    assert firings["refused"] == 0
    assert value(got, "ai_admin_schedule_missed_total") == 0
    lateness = "ai_admin_schedule_firing_lateness_seconds"
    assert value(got, f"{lateness}_count") == view["runs"]  # each firing observed once
    assert value(got, f"{lateness}_bucket", le="+Inf") == view["runs"]
    _assert_cumulative(got, f"{lateness}_bucket")
    assert value(got, "ai_admin_schedule_firings_waiting") == 0
