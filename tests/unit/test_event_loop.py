"""The agent's processes (``serve``, ``mcp``) run on uvloop, a dependency on this platform."""

from __future__ import annotations

import asyncio

from ai_admin.cli import loop


def test_the_agent_runs_its_coroutine_on_uvloop() -> None:
    async def main() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__

    assert loop.run(main()).startswith("uvloop")
