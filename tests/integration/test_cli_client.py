"""The ``ai-admin`` client commands as a user runs them: the installed command in a
subprocess against a live agent, with real pulls and pushes against the test registries.

Each output format is read back as its consumer would (JSON parsed, CSV parsed, the table
searched); every failure class exits with its own status; ``--wait`` and ``--follow`` end at
the task's final state with the right status, also across a restart of the agent;
confirmations leave the queue alone when answered no; ``monitor`` and the live progress bar
are driven in a real terminal (tmux) and read back from its screen.
"""

from __future__ import annotations

import csv
import io
import json
import queue
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import pytest
from agent_process import OPERATOR_TOKEN, READ_ONLY_TOKEN, AgentProcess, launch
from cli_runner import AI_ADMIN, Cli, Tmux, tmux_binary
from dockerenv import AuthRegistry, ImageCleanup, build_random_data_image, only_in_registry

from ai_admin.cli.exits import ExitCode

pytestmark = pytest.mark.docker

COMMANDS = Path(__file__).parents[2] / "commands"
PULL_MB = 12


@pytest.fixture
def cli(agent: AgentProcess) -> Iterator[Cli]:
    """The client of the module's agent; the queue is left running after each test."""
    client = Cli(agent.url)
    yield client
    client.run("queue", "resume")


@pytest.fixture(scope="session")
def tmux() -> Iterator[Tmux]:
    server = Tmux(tmux_binary())
    yield server
    server.close()


def _image_in_registry(
    docker_client: docker.DockerClient, cleanup: ImageCleanup, registry: str, size_mb: int
) -> str:
    repository = f"{registry}/ai-admin-test/cli-{uuid.uuid4().hex[:8]}"
    _tag, ref, _pushed = only_in_registry(docker_client, cleanup, repository, size_mb)
    return ref


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pull_wait_ends_completed_and_lists_in_every_format(
    cli: Cli,
    docker_client: docker.DockerClient,
    open_registry: str,
    image_cleanup: ImageCleanup,
) -> None:
    ref = _image_in_registry(docker_client, image_cleanup, open_registry, PULL_MB)

    pulled = cli.run("pull", ref, "--wait")  # stdout is a pipe: JSON, progress on stderr

    assert pulled.returncode == ExitCode.OK, pulled.stderr
    final = json.loads(pulled.stdout)
    task_id = final["task_id"]
    assert final["status"]["value"] == "completed"
    assert final["result"]["bytes_downloaded"] >= PULL_MB * 1024 * 1024
    lines = pulled.stderr.splitlines()
    assert lines[0] == f"ai-admin: task {task_id} submitted; following it"
    statuses = [line.split()[1] for line in lines[1:]]
    assert "downloading" in statuses, pulled.stderr
    assert statuses[-1] == "completed"
    assert any(" MB / " in line for line in lines), pulled.stderr  # bytes done of the total
    assert docker_client.images.get(ref).id == final["result"]["image_id"]

    listed = json.loads(cli.run("list", "--type", "pull", "--limit", "500").stdout)  # JSON piped
    mine = [t for t in listed["tasks"] if t["id"] == task_id]
    assert [(t["status"], t["params"]["image_name"]) for t in mine] == [
        ("completed", ref.rpartition(":")[0])
    ]

    as_csv = cli.run("list", "--status", "completed", "--limit", "500", "--format", "csv")
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(as_csv.stdout))}
    assert (rows[task_id]["type"], rows[task_id]["status"], rows[task_id]["image"]) == (
        "pull",
        "completed",
        ref,
    )
    assert float(rows[task_id]["progress"]) == 100

    table = cli.run("list", "--limit", "500", "--format", "table").stdout
    row = next(line for line in table.splitlines() if task_id in line)
    assert "completed" in row
    assert "100%" in row
    assert ref in row
    assert "STATUS" in table

    shown = cli.run("status", task_id, "--format", "table")
    assert shown.returncode == ExitCode.OK
    assert "completed (Completed successfully)" in shown.stdout
    as_csv = cli.run("status", task_id, "--format", "csv").stdout
    fields = dict(csv.reader(io.StringIO(as_csv)))
    assert (fields["task_id"], fields["progress"]) == (task_id, "100%")


def test_push_wait_exits_0_and_a_refused_push_exits_task_failed_with_its_code(
    cli: Cli,
    docker_client: docker.DockerClient,
    open_registry: str,
    auth_registry: AuthRegistry,
    image_cleanup: ImageCleanup,
) -> None:
    name = f"ai-admin-test/cli-push-{uuid.uuid4().hex[:8]}:1"
    good = image_cleanup.add(f"{open_registry}/{name}")
    refused = image_cleanup.add(f"{auth_registry.address}/{name}")
    build_random_data_image(docker_client, good, size_mb=2)
    docker_client.images.get(good).tag(refused)

    pushed = cli.run("push", good, "--wait")
    assert pushed.returncode == ExitCode.OK, pushed.stderr
    assert json.loads(pushed.stdout)["result"]["digest"].startswith("sha256:")

    failed = cli.run("push", refused, "--retries", "0", "--wait")
    assert failed.returncode == ExitCode.TASK_FAILED, failed.stderr
    summary = json.loads(failed.stdout)
    assert summary["status"]["value"] == "failed"
    assert summary["error"]["code"] == "DOCKER_AUTHENTICATION_FAILED"
    message = f"ai-admin: DOCKER_AUTHENTICATION_FAILED: task {summary['task_id']} ended failed"
    assert message in failed.stderr
    for suggestion in summary["error"]["suggestions"]:
        assert f"  - {suggestion}" in failed.stderr

    again = cli.run("status", summary["task_id"], "--follow")  # already over: ends at once
    assert again.returncode == ExitCode.TASK_FAILED
    assert json.loads(again.stdout)["error"]["code"] == "DOCKER_AUTHENTICATION_FAILED"

    # The registry's password on stdin, for this task only: accepted, and never shown.
    user = ("--username", auth_registry.username)
    logged_in = cli.run("push", refused, *user, "--wait", input=auth_registry.password + "\n")
    assert logged_in.returncode == ExitCode.OK, logged_in.stderr
    assert json.loads(logged_in.stdout)["result"]["digest"].startswith("sha256:")
    assert auth_registry.password not in logged_in.stdout + logged_in.stderr


def test_build_wait_exits_0_and_a_failing_step_exits_task_failed(
    cli: Cli, busybox_image: str, image_cleanup: ImageCleanup, tmp_path: Path
) -> None:
    tag = image_cleanup.add(f"ai-admin-test/cli-build:{uuid.uuid4().hex[:8]}")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM {busybox_image}\nRUN echo built > /built\n")
    built = cli.run("build", "-f", str(dockerfile), "-t", tag, "--wait")
    assert built.returncode == ExitCode.OK, built.stderr
    assert json.loads(built.stdout)["result"]["tags"] == [tag]
    assert " building " in built.stderr

    dockerfile.write_text(f"FROM {busybox_image}\nRUN exit 3\n")
    failed = cli.run("build", "-f", str(dockerfile), "-t", tag, "--retries", "0", "--wait")
    assert failed.returncode == ExitCode.TASK_FAILED, failed.stderr
    assert json.loads(failed.stdout)["error"]["code"] == "DOCKER_BUILD_FAILED"
    assert "ai-admin: DOCKER_BUILD_FAILED: task " in failed.stderr


def test_a_merged_submit_waits_for_the_task_it_joined(
    cli: Cli,
    docker_client: docker.DockerClient,
    open_registry: str,
    image_cleanup: ImageCleanup,
) -> None:
    ref = _image_in_registry(docker_client, image_cleanup, open_registry, 4)
    cli.json("queue", "pause")
    first = cli.submit("pull", ref)
    second = subprocess.Popen(
        cli.argv("pull", ref, "--wait"),
        env=cli.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert second.stderr is not None
        said = second.stderr.readline()
        assert said == (
            f"ai-admin: an identical task was waiting or running; merged into {first}\n"
        )
        cli.json("queue", "resume")
        out, err = second.communicate(timeout=120)
    finally:
        second.kill()
    assert second.returncode == ExitCode.OK, err
    final = json.loads(out)
    assert (final["task_id"], final["status"]["value"]) == (first, "completed")


def test_status_follow_waits_for_a_queued_task_and_ends_with_it(
    cli: Cli,
    docker_client: docker.DockerClient,
    open_registry: str,
    image_cleanup: ImageCleanup,
) -> None:
    ref = _image_in_registry(docker_client, image_cleanup, open_registry, 4)
    cli.json("queue", "pause")
    task_id = cli.submit("pull", ref)
    follower = subprocess.Popen(
        cli.argv("status", task_id, "--follow"),
        env=cli.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stderr is not None
        first = follower.stderr.readline()  # the task's state as the stream opened
        assert " pending " in first, first
        assert follower.poll() is None  # still following a waiting task
        cli.json("queue", "resume")
        out, err = follower.communicate(timeout=120)
    finally:
        follower.kill()
    assert follower.returncode == ExitCode.OK, err
    assert json.loads(out)["status"]["value"] == "completed"
    assert err.splitlines()[-1].split()[1] == "completed"


def _interruptible() -> None:
    """Ctrl-C reaches the command as it does from a terminal: a test run started in the
    background of a script inherits SIGINT ignored, and Python keeps it so."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_following_and_leaves_the_task_queued(cli: Cli) -> None:
    cli.json("queue", "pause")
    follower = subprocess.Popen(
        cli.argv("pull", "127.0.0.1:1/cli/interrupted:1", "--wait"),
        env=cli.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )
    try:
        assert follower.stderr is not None
        submitted = follower.stderr.readline()
        task_id = submitted.split()[2]
        assert " pending " in follower.stderr.readline()
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == ExitCode.INTERRUPTED
    assert out == ""
    assert err == (
        f"ai-admin: stopped following; task {task_id} goes on "
        f"(`ai-admin status {task_id} --follow`)\n"
    )
    assert cli.status(task_id) == "pending"
    cli.run("manage", "cancel", task_id, "--yes")


def test_each_failure_class_exits_with_its_status(cli: Cli, agent: AgentProcess) -> None:
    missing = cli.run("status", "no-such-task")
    assert missing.returncode == ExitCode.NOT_FOUND
    assert missing.stderr.startswith("ai-admin: QUEUE_TASK_NOT_FOUND: No task with id")
    assert missing.stdout == ""

    not_followed = cli.run("status", "no-such-task", "--follow")  # the stream's own 404
    assert not_followed.returncode == ExitCode.NOT_FOUND
    assert not_followed.stderr.startswith("ai-admin: QUEUE_TASK_NOT_FOUND: No task with id")

    wrong = Cli(agent.url, token="not-the-token").run("list")
    assert wrong.returncode == ExitCode.AUTH
    assert wrong.stderr.startswith("ai-admin: AUTH_INVALID_TOKEN: ")

    reader = Cli(agent.url, token=READ_ONLY_TOKEN)
    assert reader.run("list").returncode == ExitCode.OK
    forbidden = reader.run("queue", "pause")
    assert forbidden.returncode == ExitCode.AUTH
    assert "AUTH_FORBIDDEN" in forbidden.stderr

    nobody = cli.run("list", url=f"http://127.0.0.1:{_closed_port()}")
    assert nobody.returncode == ExitCode.UNREACHABLE
    assert "CLIENT_AGENT_UNREACHABLE: No agent answers at http://127.0.0.1:" in nobody.stderr

    usage = cli.run("list", "--limit", "0")
    assert usage.returncode == ExitCode.USAGE

    done = cli.json("list", "--status", "completed", "--limit", "1")["tasks"]
    if done:  # resuming a task that is not paused: the state machine refuses
        refused = cli.run("manage", "resume", done[0]["id"])
        assert refused.returncode == ExitCode.REFUSED
        assert refused.stderr.startswith("ai-admin: QUEUE_")


def test_an_address_that_is_no_agent_is_an_agent_error(cli: Cli, open_registry: str) -> None:
    answered = cli.run("list", url=f"http://{open_registry}")  # a registry answers, not JSON
    assert answered.returncode == ExitCode.AGENT_ERROR
    assert answered.stderr.startswith(
        f"ai-admin: CLIENT_BAD_ANSWER: http://{open_registry} answered HTTP 404"
    )


def _events_of(lines: queue.Queue[str], task_id: str, timeout_s: float) -> list[dict[str, Any]]:
    """The JSON lines about ``task_id`` until it failed, or none came for ``timeout_s``."""
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["status"] != "failed":
        try:
            event = json.loads(lines.get(timeout=timeout_s))
        except queue.Empty:
            return seen
        if event["task_id"] == task_id:
            seen.append(event)
    return seen


def test_follow_without_an_id_prints_every_tasks_changes_until_interrupted(cli: Cli) -> None:
    watcher = subprocess.Popen(
        cli.argv("status", "--follow", "--format", "json"),
        env=cli.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(x) for x in watcher.stdout or ()], daemon=True
    ).start()
    try:
        # The stream carries live changes only: submit until one task is seen from its start
        # (the stream may open while the first one is under way).
        for attempt in range(10):
            task_id = cli.submit("pull", f"127.0.0.1:1/cli/watched:{attempt}", "--retries", "0")
            seen = _events_of(lines, task_id, timeout_s=3)
            if seen and seen[0]["status"] == "pending":
                break
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=30)
    finally:
        watcher.kill()
    assert seen[0]["status"] == "pending"
    assert seen[-1]["status"] == "failed"
    assert seen[-1]["error_code"] == "DOCKER_NETWORK_ERROR"
    assert watcher.returncode == ExitCode.INTERRUPTED


def test_commands_the_agent_may_not_have_print_its_own_answer(cli: Cli) -> None:
    """schedule_*, batch_* and the queue and depends_on params arrive with the orchestration
    work: until the agent has them, it answers with its own structured error."""
    known = {c["name"]: c for c in cli.json("send", str(COMMANDS / "commands.json"))["commands"]}

    schedules = cli.run("schedule", "list", "--format", "json")
    if "schedule_list" in known:
        assert schedules.returncode == ExitCode.OK, schedules.stderr
        json.loads(schedules.stdout)
    else:
        assert schedules.returncode == ExitCode.UNSUPPORTED
        assert schedules.stderr.startswith(
            "ai-admin: REQUEST_UNKNOWN_ACTION: Unknown action 'schedule_list'."
        )

    batch = cli.run("batch", "status", "no-such-batch")
    assert batch.returncode == (
        ExitCode.NOT_FOUND if "batch_status" in known else ExitCode.UNSUPPORTED
    ), batch.stderr

    gone = cli.run("queue", "delete", "no-such-queue", "--yes")
    assert gone.returncode == (
        ExitCode.NOT_FOUND if "queue_delete" in known else ExitCode.UNSUPPORTED
    ), gone.stderr

    pull_params = known["docker_pull"]["params_schema"]["properties"]
    queued = cli.run("pull", "127.0.0.1:1/cli/none:1", "--queue", "nightly", "--depends-on", "x")
    if "queue" not in pull_params:
        assert queued.returncode == ExitCode.REFUSED
        assert "VALIDATION_INVALID_PARAMS" in queued.stderr
        assert "params.queue: unknown parameter" in queued.stderr
    else:  # a queue that does not exist, or a dependency that does not: refused by name
        assert queued.returncode in (ExitCode.REFUSED, ExitCode.NOT_FOUND), queued.stderr


def test_a_schedules_life_through_the_schedule_subcommands(cli: Cli, tmp_path: Path) -> None:
    """The subcommands send the params the agent's schedule_* commands take (an agent
    without schedules refuses the first one as unknown)."""
    known = {c["name"] for c in cli.json("send", str(COMMANDS / "commands.json"))["commands"]}
    message = tmp_path / "pull.json"
    message.write_text(json.dumps({"action": "docker_pull", "params": {"image_name": "cli/a"}}))
    create = ("schedule", "create", "--name", "hourly", "--interval", "3600")
    if "schedule_create" not in known:
        refused = cli.run(*create, "--command", str(message))
        assert refused.returncode == ExitCode.UNSUPPORTED
        return

    created = cli.json(*create, "--command", str(message))
    schedule_id = created["schedule_id"]
    assert (created["name"], created["interval_s"], created["paused"]) == ("hourly", 3600, False)
    listed = cli.run("schedule", "list", "--format", "csv").stdout
    assert [row["name"] for row in csv.DictReader(io.StringIO(listed))].count("hourly") == 1
    assert cli.json("schedule", "pause", schedule_id)["paused"] is True
    assert cli.json("schedule", "get", schedule_id)["next_run_at"] is None
    assert cli.json("schedule", "resume", schedule_id)["paused"] is False

    declined = cli.run("schedule", "delete", schedule_id, input="n\n")
    assert declined.returncode == ExitCode.DECLINED
    assert cli.json("schedule", "get", schedule_id)["schedule_id"] == schedule_id
    assert cli.json("schedule", "delete", schedule_id, "--yes")["deleted"] is True
    assert cli.run("schedule", "get", schedule_id).returncode == ExitCode.NOT_FOUND


def test_a_batch_through_the_batch_subcommands(cli: Cli, tmp_path: Path) -> None:
    """batch submit sends the file's messages as tasks, with name and serial; status, list
    and remove take the batch's id (an agent without batches refuses the submit as unknown)."""
    known = {c["name"] for c in cli.json("send", str(COMMANDS / "commands.json"))["commands"]}
    entries = [
        {
            "action": "docker_pull",
            "params": {"image_name": f"127.0.0.1:1/cli/b{n}", "max_retries": 0},
        }
        for n in range(2)
    ]
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"tasks": entries}))
    if "batch_submit" not in known:
        refused = cli.run("batch", "submit", str(batch))
        assert refused.returncode == ExitCode.UNSUPPORTED
        return

    submitted = cli.json("batch", "submit", str(batch), "--name", "cli-release")
    batch_id = submitted["batch_id"]
    assert len(submitted["task_ids"]) == 2
    for task_id in submitted["task_ids"]:  # both fail at once (nothing listens on port 1)
        follow = cli.run("status", task_id, "--follow")
        assert follow.returncode == ExitCode.TASK_FAILED, follow.stderr
    status = cli.json("batch", "status", batch_id)
    assert (status["name"], status["serial"], status["state"]) == ("cli-release", True, "failed")
    listed = cli.run("batch", "list", "--format", "csv").stdout
    assert batch_id in {row["batch_id"] for row in csv.DictReader(io.StringIO(listed))}
    assert cli.json("batch", "remove", batch_id, "--yes")["removed"] is True
    assert cli.run("batch", "status", batch_id).returncode == ExitCode.NOT_FOUND


def test_clear_and_cancel_ask_first(cli: Cli) -> None:
    cli.json("queue", "pause")
    task_id = cli.submit("pull", "127.0.0.1:1/cli/held:1")

    declined = cli.run("manage", "cancel", task_id, input="n\n")
    assert declined.returncode == ExitCode.DECLINED
    assert f"Cancel task {task_id}? [y/N]" in declined.stderr
    assert cli.status(task_id) == "pending"
    no_answer = cli.run("manage", "cancel", task_id)  # stdin at its end: no
    assert no_answer.returncode == ExitCode.DECLINED
    assert cli.status(task_id) == "pending"

    accepted = cli.run("manage", "cancel", task_id, input="y\n")
    assert accepted.returncode == ExitCode.OK, accepted.stderr
    assert cli.status(task_id) == "cancelled"

    history = cli.json("list", "--status", "cancelled", "--limit", "1000")["total"]
    assert history >= 1
    kept = cli.run("queue", "clear", "--include-failed", input="n\n")
    assert kept.returncode == ExitCode.DECLINED
    assert cli.json("list", "--status", "cancelled", "--limit", "1000")["total"] == history

    cleared = cli.json("queue", "clear", "--include-failed", "--yes")
    assert cleared["deleted"] >= history
    assert cli.json("list", "--status", "cancelled", "--limit", "1000")["total"] == 0


def test_concurrent_cancels_leave_one_cancelled_task_and_one_success(cli: Cli) -> None:
    cli.json("queue", "pause")
    task_id = cli.submit("pull", "127.0.0.1:1/cli/raced:1")
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda _: cli.run("manage", "cancel", task_id, "--yes"), range(4)))
    codes = sorted(run.returncode for run in runs)
    assert codes == [ExitCode.OK, *[ExitCode.REFUSED] * 3], [r.stderr for r in runs]
    refusals = [r.stderr for r in runs if r.returncode == ExitCode.REFUSED]
    assert all(e.startswith("ai-admin: QUEUE_TASK_FINISHED: ") for e in refusals), refusals
    assert cli.status(task_id) == "cancelled"


def test_send_export_config_and_metrics(cli: Cli, agent: AgentProcess, tmp_path: Path) -> None:
    status = cli.json("send", str(COMMANDS / "queue_status.json"))
    assert {"summary", "counters", "tasks"} <= set(status)
    piped = cli.run("send", "-", input='{"action": "queue_metrics", "params": {}}')
    assert "enqueued" in json.loads(piped.stdout)

    missing = cli.run("send", str(tmp_path / "nothing.json"))
    assert missing.returncode == ExitCode.USAGE
    assert missing.stderr.startswith("ai-admin: CLIENT_BAD_FILE: ")
    refused = cli.run("send", "-", input='{"action": "queue_status", "params": {"x": 1}}')
    assert refused.returncode == ExitCode.REFUSED
    assert "VALIDATION_INVALID_PARAMS" in refused.stderr

    out = tmp_path / "export.json"
    written = cli.json("export", "--what", "all", "--output", str(out))
    exported = json.loads(out.read_text())
    assert {"jobs", "metrics", "config", "total_jobs"} <= set(exported)
    assert written["jobs"] == len(exported["jobs"]) == exported["total_jobs"]
    assert OPERATOR_TOKEN not in out.read_text()

    shown = cli.json("config", "show")
    assert shown["client"] == {"url": agent.url, "token_from": "AI_ADMIN_TOKEN"}
    assert shown["agent"]["max_concurrent"] >= 1
    assert OPERATOR_TOKEN not in json.dumps(shown)

    metrics = cli.run("metrics", "--format", "csv").stdout
    table = dict(csv.reader(io.StringIO(metrics)))
    assert table["key"] == "value"
    assert int(table["enqueued"]) >= 0


def test_queue_pause_list_configure_and_resume(cli: Cli) -> None:
    assert cli.json("queue", "pause") == {"queue": "default", "paused": True}
    queues = cli.json("queue", "list")["queues"]
    default = next(q for q in queues if q["name"] == "default")
    assert default["paused"] is True
    before = cli.json("queue", "configure")["settings"]["max_concurrent"]
    try:
        changed = cli.json("queue", "configure", "--max-concurrent", "3")
        assert changed["changed"] == ["max_concurrent"]
        assert changed["settings"]["max_concurrent"] == 3
    finally:
        cli.json("queue", "configure", "--max-concurrent", str(before))
    assert cli.json("queue", "resume") == {"queue": "default", "paused": False}
    assert cli.json("status")["queue"]["paused"] is False


def test_the_token_file_and_the_agents_settings_are_found_without_flags(tmp_path: Path) -> None:
    data = tmp_path / "data"
    agent = launch(data, token=None, read_only=())  # generates <data>/token
    try:
        port = agent.url.rpartition(":")[2]
        settings = {"AI_ADMIN_DATA_DIR": str(data), "AI_ADMIN_PORT": port}
        env = Cli(agent.url, token=None).env(settings)
        done = subprocess.run(
            [AI_ADMIN, "config", "show", "--format", "json"],  # no --url, no token
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        assert agent.stop() == 0
    assert done.returncode == ExitCode.OK, done.stderr
    shown = json.loads(done.stdout)
    assert shown["client"] == {
        "url": f"http://127.0.0.1:{port}",
        "token_from": f"token file {data / 'token'}",
    }


def test_follow_resumes_across_a_restart_of_the_agent(
    tmp_path: Path,
    docker_client: docker.DockerClient,
    open_registry: str,
    image_cleanup: ImageCleanup,
) -> None:
    ref = _image_in_registry(docker_client, image_cleanup, open_registry, 4)
    port = str(_closed_port())  # free now: the agent takes it, and takes it again
    data = tmp_path / "data"
    agent = launch(data, args=["--port", port])
    cli = Cli(agent.url)
    follower: subprocess.Popen[str] | None = None
    try:
        cli.json("queue", "pause")  # kept across the restart
        task_id = cli.submit("pull", ref)
        follower = subprocess.Popen(
            cli.argv("status", task_id, "--follow"),
            env=cli.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert follower.stderr is not None
        assert " pending " in follower.stderr.readline()
        assert agent.stop() == 0
        time.sleep(1)  # the follower finds no agent and keeps trying
        assert follower.poll() is None
        agent = launch(data, args=["--port", port])
        assert agent.url == cli.url
        cli.json("queue", "resume")
        out, err = follower.communicate(timeout=120)
    finally:
        if follower is not None:
            follower.kill()
        agent.stop()
    assert follower.returncode == ExitCode.OK, err
    assert json.loads(out)["status"]["value"] == "completed"
    assert err.splitlines()[-1].split()[1] == "completed"


def _counters(screen: str) -> dict[str, str]:
    """The monitor's counters: the line under the one that names them."""
    lines = screen.splitlines()
    for i, line in enumerate(lines[:-1]):
        if "WAITING" in line:
            return dict(zip(line.split(), lines[i + 1].split(), strict=False))
    return {}


def test_monitor_shows_the_queue_and_quits_on_q_or_ctrl_c(cli: Cli, tmux: Tmux) -> None:
    cli.json("queue", "pause")
    task_id = cli.submit("pull", "127.0.0.1:1/cli/monitored:1", "--priority", "high")
    try:
        tmux.start("monitor", cli.argv("monitor", "--interval", "0.3"), cli.env())
        screen = tmux.wait_for(
            "monitor", lambda s: task_id[:8] in s and _counters(s).get("QUEUE") == "PAUSED"
        )
        assert "ai-admin monitor" in screen
        assert int(_counters(screen)["WAITING"]) >= 1
        active = next(line for line in screen.splitlines() if task_id[:8] in line)
        assert "pending" in active
        assert "0%" in active
        assert "recent activity" in screen

        cli.json("queue", "resume")  # the screen follows: the task fails, the queue runs
        tmux.wait_for(
            "monitor", lambda s: _counters(s).get("QUEUE") == "running" and "DOCKER_" in s
        )
        tmux.keys("monitor", "q")
        tmux.wait_for("monitor", lambda s: "EXIT=0" in s)

        tmux.start("monitor-2", cli.argv("monitor"), cli.env())
        tmux.wait_for("monitor-2", lambda s: "RUNNING" in s)
        tmux.keys("monitor-2", "C-c")
        tmux.wait_for("monitor-2", lambda s: "EXIT=0" in s)
    finally:
        cli.run("manage", "cancel", task_id, "--yes")


def _row(screen: str, first: str) -> list[str]:
    """The words (the cells, without the table's borders) of the screen's line that starts
    with ``first``."""
    rows = [line.replace("\u2502", " ").split() for line in screen.splitlines()]
    return next(words for words in rows if words[:1] == [first])


def test_monitor_shows_each_named_queue_and_the_queue_of_each_task(cli: Cli) -> None:
    once = ("monitor", "--once")
    wide = {"COLUMNS": "200"}
    assert "QUEUES" not in cli.run(*once, env=wide).stdout.upper().split()  # default alone

    cli.json("queue", "create", "monitored", "--max-concurrent", "2", "--max-queue-size", "50")
    cli.json("queue", "pause", "--queue", "monitored")
    task_id = cli.submit("pull", "127.0.0.1:1/cli/queued:1", "--queue", "monitored")
    try:
        screen = cli.run(*once, env=wide).stdout
        assert "queues" in screen
        assert _row(screen, "monitored")[1:4] == ["0/2", "1/50", "PAUSED"]
        assert _row(screen, "default")[3] in ("running", "PAUSED")
        active = _row(screen, task_id[:8])
        assert active[2:4] == ["monitored", "pending"]
    finally:
        cli.run("manage", "cancel", task_id, "--yes")
        cli.json("queue", "delete", "monitored", "--yes")


def test_an_error_is_in_colour_on_a_terminal_only(cli: Cli, tmux: Tmux) -> None:
    piped = cli.run("status", "no-such-task")
    assert "\x1b[" not in piped.stderr
    tmux.start("colour", cli.argv("status", "no-such-task"), cli.env())
    tmux.wait_for("colour", lambda s: "EXIT=5" in s)
    screen = tmux.screen("colour", escapes=True)
    line = next(x for x in screen.splitlines() if "QUEUE_TASK_NOT_FOUND" in x)
    assert "\x1b[" in line  # red, on a terminal
    assert "No task with id 'no-such-task'." in line


def test_wait_on_a_terminal_draws_a_live_bar_with_bytes_and_ends_at_100(
    cli: Cli,
    tmux: Tmux,
    docker_client: docker.DockerClient,
    open_registry: str,
    image_cleanup: ImageCleanup,
) -> None:
    ref = _image_in_registry(docker_client, image_cleanup, open_registry, PULL_MB)
    tmux.start("bar", cli.argv("pull", ref, "--wait"), cli.env())
    screen = tmux.wait_for("bar", lambda s: "EXIT=" in s, timeout_s=180)
    assert "EXIT=0" in screen, screen
    bar = next(line for line in screen.splitlines() if line.startswith("completed"))
    assert "━" in bar
    assert "100%" in bar
    assert "Completed successfully" in bar
    assert "MB" in bar  # the last numbers: bytes done of the total
    assert "completed (Completed successfully)" in screen  # the table: stdout is a terminal
