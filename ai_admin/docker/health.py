"""Whether the Docker engine answers, for ``/health`` and the start-up log."""

from __future__ import annotations

from functools import partial
from typing import Any

import docker
from docker.constants import DEFAULT_DOCKER_API_VERSION
from docker.errors import DockerException

from ai_admin.docker.client import client_settings
from ai_admin.errors import ErrorCode
from ai_admin.threads import in_thread

_PROBE_TIMEOUT_S = 3


def _probe(base_url: str | None) -> dict[str, Any]:
    try:
        # A fixed API version and an unversioned /version: one request, no negotiation.
        client = docker.APIClient(
            **client_settings(base_url),
            version=DEFAULT_DOCKER_API_VERSION,
            timeout=_PROBE_TIMEOUT_S,
        )
        try:
            version = client.version(api_version=False)
        finally:
            client.close()
    except (DockerException, OSError) as exc:
        return {
            "reachable": False,
            "error_code": ErrorCode.DOCKER_DAEMON_UNAVAILABLE.value,
            "error": _first_line(str(exc)),
        }
    return {
        "reachable": True,
        "version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
    }


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "no answer"


async def docker_health(base_url: str | None = None) -> dict[str, Any]:
    """Ask the engine for its version, off the event loop; never raises."""
    return await in_thread(partial(_probe, base_url), "docker-health")
