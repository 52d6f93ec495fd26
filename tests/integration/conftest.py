"""The integration tests' agents and clients, defined once for every module.

An agent is ``ai-admin serve`` in a subprocess (``agent_process.launch`` and ``serving``) or the
same app in this process (``inprocess_agent.serve_agent``); a client is an ``Api``
(``http_client``), which checks every answer's envelope as a careful client would.

- ``agent``: one ``ai-admin serve`` per test module, started with the module's
  ``agent_options`` (keywords of ``launch``: ``env``, ``args``, ...; a module overrides that
  fixture to change them) and stopped at the module's end, where it must exit cleanly and
  without a traceback. A module whose agent runs in this process overrides ``agent`` itself
  with anything that has a ``url``.
- ``api``: an operator's client of that agent for one test (``http_client.client``, which a
  test that starts its own agents uses directly).
- Every test starts with no ``AI_ADMIN_*`` variable in its environment: an agent in this
  process reads only the settings the test gives it (agents in a subprocess get theirs from
  ``agent_process.agent_env``, which drops them too).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from agent_process import OPERATOR_TOKEN, AgentProcess, serving
from http_client import Api, client
from wire_check import Validated


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AI_ADMIN_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def agent_options() -> dict[str, Any]:
    """How this module's ``agent`` starts: keywords of ``agent_process.launch``."""
    return {}


@pytest.fixture(scope="module")
def agent(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    agent_options: dict[str, Any],
) -> Iterator[AgentProcess]:
    """The module's shared agent; its data directory is named after the module."""
    name = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    with serving(tmp_path_factory.mktemp(name) / "data", **agent_options) as running:
        yield running


@pytest.fixture
async def api(agent: Any) -> AsyncIterator[Api]:
    """An operator's client of the module's agent, on a session closed after the test."""
    async with client(agent.url, OPERATOR_TOKEN) as opened:
        yield opened


@pytest.fixture
async def answers_as_documented(api: Api) -> AsyncIterator[None]:
    """Every answer a test got through ``api`` has the shape the OpenAPI document gives it
    (a module asks for it with ``pytestmark = pytest.mark.usefixtures(...)``)."""
    yield
    validated = Validated()
    for answer in api.answers:
        validated.check_http(answer)
