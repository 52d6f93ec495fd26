"""ai-admin: a Docker task orchestration agent.

The Python API is importable from here: ``from ai_admin import TaskQueue, DockerTask, TaskType``.
Those names load the queue on first use (a module ``__getattr__``), so importing any part of
the package, the base modules included, never loads the queue with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loguru import logger

__version__ = "0.1.0"

__all__ = [
    "DockerTask",
    "Submission",
    "TaskPriority",
    "TaskQuery",
    "TaskQueue",
    "TaskStatus",
    "TaskType",
    "__version__",
]
# The Python API, all defined in ai_admin.python_api.
_API = frozenset(__all__) - {"__version__"}

if TYPE_CHECKING:
    from ai_admin.python_api import (
        DockerTask,
        Submission,
        TaskPriority,
        TaskQuery,
        TaskQueue,
        TaskStatus,
        TaskType,
    )


def __getattr__(name: str) -> Any:
    if name in _API:
        import ai_admin.python_api as python_api

        return getattr(python_api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


# Silent as a library, as loguru asks of libraries: loguru's default sink prints the values of
# variables in tracebacks, credentials among them. ``ai-admin serve`` and ``mcp`` turn the log
# on with their own sinks (``ai_admin.logging.setup_logging``); a program using the Python API
# may call ``logger.enable("ai_admin")`` with a sink of its own (``diagnose=False``).
logger.disable("ai_admin")
