"""The event loop the agent's processes run on: uvloop where it is installed, else asyncio's.

uvloop does the loop's own work (callbacks, sockets, timers) in C, which is most of what a busy
agent spends outside its handlers; the agent uses nothing that needs asyncio's own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # not built for this platform
        return asyncio.run(main)
    return uvloop.run(main)
