"""Dependencies between tasks: a task that names ``depends_on`` starts once every one of them
has completed, and fails with ``QUEUE_DEPENDENCY_FAILED`` if one of them fails, is cancelled or
times out.

Only tasks that exist may be named, so a cycle can only be a task naming itself (a batch's
entries may name earlier entries only). A dependency that was merged into an identical task is
followed to that task. The engine keeps, for each live task it waits for, the tasks waiting
(``Dependents``); these plain functions decide and describe.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from ai_admin.errors import AiAdminError, ErrorCode
from ai_admin.queue.models import DockerTask, TaskStatus

ENDED_BADLY = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMEOUT})
MAX_MERGE_HOPS = 16  # a merged task points at a live one, which is never merged itself


class Dependents:
    """For each task others wait for, the ids of the tasks waiting (live ones; a task that has
    left memory meanwhile is skipped when its dependency ends)."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[str]] = {}

    def add(self, task_id: str, on: Iterable[str]) -> None:
        for dependency in on:
            self._waiting.setdefault(dependency, set()).add(task_id)

    def release(self, dependency: str) -> set[str]:
        """The tasks that waited for ``dependency``, which has just ended."""
        return self._waiting.pop(dependency, set())


def check_names(task: DockerTask) -> None:
    """Refuse a task that names itself; drop repeated names (order kept)."""
    if task.id in task.depends_on:
        raise invalid(task, task.id, "a task cannot depend on itself (a cycle)")
    task.depends_on = list(dict.fromkeys(task.depends_on))


def invalid(task: DockerTask, dependency: str, why: str) -> AiAdminError:
    return AiAdminError(
        f"Task {task.id} cannot depend on {dependency!r}: {why}.",
        code=ErrorCode.QUEUE_DEPENDENCY_INVALID,
        details={"task_id": task.id, "dependency": dependency, "reason": why},
    )


def failed_because(task: DockerTask, dependency: DockerTask) -> AiAdminError:
    """The error of a task whose dependency ended without completing."""
    return AiAdminError(
        f"Task {task.id} did not run: task {dependency.id}, which it depends on, ended "
        f"{dependency.status.value}"
        + (f" ({dependency.error_code})" if dependency.error_code else "")
        + ".",
        code=ErrorCode.QUEUE_DEPENDENCY_FAILED,
        details={
            "task_id": task.id,
            "dependency": dependency.id,
            "dependency_status": dependency.status.value,
            "dependency_error_code": dependency.error_code,
        },
        transient=False,
    )


def waiting_step(waiting: Collection[str]) -> str:
    """The step a task shows while it waits: for what."""
    if len(waiting) == 1:
        return f"Waiting for task {next(iter(waiting))} to complete"
    return f"Waiting for {len(waiting)} tasks to complete: {', '.join(sorted(waiting))}"
