"""``ai-admin mcp`` driven by a client we did not write: the MCP Inspector (npm), in CLI mode.

The Inspector is installed by the fixture (pinned, cached under ~/.cache between runs); it starts
``ai-admin mcp`` over stdio, lists the tools, runs a real pull from the test registry with
``wait``, and sees a failing pull come back as a tool error carrying its code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
from dockerenv import ImageCleanup, only_in_registry

from ai_admin.commands import REGISTRY

pytestmark = pytest.mark.docker

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
CACHE = Path.home() / ".cache" / "ai-admin-tests" / INSPECTOR.replace("/", "_")
AI_ADMIN = Path(sys.executable).with_name("ai-admin")


@pytest.fixture(scope="session")
def inspector() -> Path:
    """The Inspector's CLI, installed from the npm registry once per machine."""
    binary = CACHE / "node_modules" / ".bin" / "mcp-inspector"
    if not binary.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install the MCP Inspector (Debian: apt-get install npm)"
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", INSPECTOR],
            check=True,
            capture_output=True,
            timeout=600,
        )
    assert binary.exists(), f"npm installed {INSPECTOR} without its mcp-inspector command"
    return binary


# The Inspector's CLI exits with this after printing a tool result whose isError is true.
TOOL_ERROR_EXIT = 5


def inspect(inspector: Path, data_dir: Path, *args: str, exit_code: int = 0) -> dict[str, Any]:
    """Run the Inspector's CLI against ``ai-admin mcp``; its first JSON document."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_ADMIN_")}
    done = subprocess.run(
        [str(inspector), "--cli", str(AI_ADMIN), "mcp", "--data-dir", str(data_dir), *args],
        env=env,
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == exit_code, done.stdout + done.stderr
    # The server's stderr may follow the answer on the same stream: the first document only.
    document, _ = json.JSONDecoder().raw_decode(done.stdout.lstrip())
    assert isinstance(document, dict)
    return document


def call(
    inspector: Path, data_dir: Path, tool: str, exit_code: int = 0, **arguments: str
) -> dict[str, Any]:
    args = ["--method", "tools/call", "--tool-name", tool]
    for name, value in arguments.items():
        args += ["--tool-arg", f"{name}={value}"]
    return inspect(inspector, data_dir, *args, exit_code=exit_code)


def test_the_inspector_lists_every_tool_with_its_schemas(inspector: Path, tmp_path: Path) -> None:
    listed = inspect(inspector, tmp_path, "--method", "tools/list")
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert sorted(tools) == sorted(REGISTRY.names())
    for tool in tools.values():
        assert tool["inputSchema"]["type"] == "object"
        assert tool["outputSchema"]["type"] == "object"
        assert tool["description"]
    assert tools["docker_push"]["annotations"]["destructiveHint"] is True


def test_the_inspector_runs_a_pull_with_wait_and_sees_a_failure_as_a_tool_error(
    inspector: Path,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    open_registry: str,
    busybox_image: str,
    image_cleanup: ImageCleanup,
) -> None:
    repository = f"{open_registry}/inspector/pull"
    tag, ref, pushed = only_in_registry(
        docker_client, image_cleanup, repository, size_mb=4, base=busybox_image
    )

    done = call(inspector, tmp_path, "docker_pull", image_name=repository, tag=tag, wait="true")
    assert done.get("isError") is not True, done
    task = done["structuredContent"]["data"]
    assert task["status"]["value"] == "completed"
    assert task["result"]["digest"] == pushed.digest
    assert docker_client.images.get(ref).id  # really pulled

    missing = f"t-missing-{uuid.uuid4().hex[:8]}"
    image_cleanup.add(f"{repository}:{missing}")
    failed = call(
        inspector,
        tmp_path,
        "docker_pull",
        TOOL_ERROR_EXIT,
        image_name=repository,
        tag=missing,
        wait="true",
    )
    assert failed["isError"] is True, failed
    text = " ".join(c["text"] for c in failed["content"] if c["type"] == "text")
    assert text.startswith("docker_pull failed: DOCKER_IMAGE_NOT_FOUND: ")
    assert failed["structuredContent"]["error"]["code"] == "DOCKER_IMAGE_NOT_FOUND"
