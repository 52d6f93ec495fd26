"""The Python API: ``TaskQueue()`` with no set-up call, ready on first use.

    from ai_admin import TaskQueue, DockerTask, TaskType

    queue = TaskQueue()
    task_id = await queue.add_task(DockerTask(task_type=TaskType.PUSH,
                                              params={"image_name": "team/app", "tag": "1.4"}))

It wires the engine to its defaults: settings from the configuration file and ``AI_ADMIN_*``
variables, the SQLite store in the data directory, and the Docker executors.

A door of its own, above the queue and Docker: the queue knows nothing about Docker, and this
module gives it the Docker executors unless others are passed in (``executors=``). It imports
them only when a ``TaskQueue`` is built without, so a program with its own executors never loads
``docker``.
"""

from __future__ import annotations

from pathlib import Path

from ai_admin.config import Settings, load_settings
from ai_admin.queue.engine import QueueEngine, Submission
from ai_admin.queue.executor import ExecutorMap
from ai_admin.queue.models import DockerTask, TaskPriority, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore
from ai_admin.queue.store import QueueStore, TaskQuery

__all__ = [
    "DockerTask",
    "Submission",
    "TaskPriority",
    "TaskQuery",
    "TaskQueue",
    "TaskStatus",
    "TaskType",
]


def default_executors(settings: Settings) -> ExecutorMap:
    """The Docker executors, for a ``TaskQueue`` given none (imported here, not at the top, so
    that importing the Python API does not load the Docker SDK)."""
    from ai_admin.docker.executors import docker_executors

    return docker_executors(settings)


class TaskQueue(QueueEngine):
    def __init__(
        self,
        store: QueueStore | None = None,
        executors: ExecutorMap | None = None,
        settings: Settings | None = None,
        *,
        data_dir: str | Path | None = None,
    ) -> None:
        if settings is None:
            settings = load_settings(overrides={"data_dir": data_dir})
        if store is None:
            store = SqliteStore(
                settings.db_path,
                synchronous="FULL" if settings.db_synchronous == "full" else "NORMAL",
            )
        if executors is None:
            executors = default_executors(settings)
        super().__init__(store, executors, settings)
