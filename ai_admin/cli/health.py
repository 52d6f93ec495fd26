"""``ai-admin health``: ask a running agent's ``/health``, for a container's ``HEALTHCHECK``.

The agent's address comes from the same settings ``ai-admin serve`` reads (file, secrets,
environment), so a changed port is followed without repeating it. An agent listening on every
interface is asked on loopback. Only the standard library is used: the check runs every few
seconds and must start fast, and an ``HTTP_PROXY`` in the environment is never used for it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ai_admin.config import Settings

__all__ = ["health_url", "probe"]

_ANY_ADDRESS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - mapped away


def health_url(settings: Settings) -> str:
    """``http://HOST:PORT/health`` of the agent these settings describe."""
    host = _ANY_ADDRESS.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/health"


def probe(settings: Settings, timeout_s: float) -> tuple[bool, str]:
    """(healthy?, one line saying why): healthy is HTTP 200 with ``"status": "ok"``, which the
    agent answers only while it reaches its Docker engine."""
    if settings.port == 0:
        return False, "the agent listens on a port picked at start (port = 0): name the port"
    url = health_url(settings)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as answer:
            body: Any = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return False, f"{url}: HTTP {exc.code}"
    except (OSError, ValueError) as exc:  # refused, timed out, not JSON
        return False, f"{url}: {getattr(exc, 'reason', None) or exc}"
    status = body.get("status") if isinstance(body, dict) else None
    docker = body.get("docker") if isinstance(body, dict) else None
    engine = docker if isinstance(docker, dict) else {}
    if status == "ok":
        return True, f"ok: Docker engine {engine.get('version', '?')} reachable"
    why = f"{engine.get('error_code', '?')}: {engine.get('error', '?')}"
    return False, f"{status}: Docker engine not reachable ({why})"
