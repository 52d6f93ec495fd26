"""Batch commands: submit several tasks as one batch, follow it as one, and steer it.

An entry of ``batch_submit`` is a submit command message (docker_build, docker_push or
docker_pull), validated exactly as that command is; it may name earlier entries of the batch in
its ``depends_on`` by their index. Every task of a batch runs in the batch's queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ai_admin.commands.docker_commands import QueueOptions, params_ref, prepare_task
from ai_admin.commands.registry import REGISTRY
from ai_admin.config import DEFAULT_QUEUE, QueueName
from ai_admin.errors import InvalidParams
from ai_admin.queue.dependencies import invalid
from ai_admin.queue.models import SUBMIT_ACTIONS, DockerTask, SubmitAction, TaskType
from ai_admin.validation import parse
from ai_admin.wire.batches import BatchList, BatchRemoved, BatchSubmitted, BatchView

if TYPE_CHECKING:
    from ai_admin.agent import Agent

MAX_BATCH_TASKS = 1000


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatchEntry(_Params):
    action: SubmitAction
    params: dict[str, Any] = Field(
        description="The command's params, as the command itself takes them (without queue: "
        "the batch's)."
    )
    depends_on: list[int] = Field(
        default_factory=list,
        max_length=MAX_BATCH_TASKS,
        description="Earlier entries of this batch (0-based indexes) that must complete first.",
    )


def _entry_rule(action: str) -> dict[str, Any]:
    return {
        "required": ["action", "params"],
        "properties": {
            "action": {"const": action},
            "params": {"allOf": [params_ref(action), {"not": {"required": ["queue"]}}]},
        },
    }


class BatchSubmitParams(_Params):
    # For the OpenAPI request schema (kept out of the params schema, as assistants' tool APIs
    # refuse combinators): each entry's params as its own command's.
    SCHEMA_RULES: ClassVar[tuple[dict[str, Any], ...]] = (
        {"properties": {"tasks": {"items": {"anyOf": [_entry_rule(a) for a in SUBMIT_ACTIONS]}}}},
    )

    tasks: list[BatchEntry] = Field(min_length=1, max_length=MAX_BATCH_TASKS)
    name: str | None = Field(None, max_length=200, description="A name to know it by.")
    queue: QueueName = DEFAULT_QUEUE
    serial: bool = Field(
        True,
        description="Wait in the queue's line and run when the batches before it have "
        "finished (false: start at once).",
    )


class BatchParams(_Params):
    batch_id: str = Field(min_length=1, max_length=100)


class BatchListParams(_Params):
    queue: QueueName | None = Field(None, description="Only this queue's batches.")


class BatchMoveParams(BatchParams):
    position: int = Field(ge=1, description="1 runs next; past the end goes last.")


@REGISTRY.command(
    "batch_submit",
    BatchSubmitParams,
    result=BatchSubmitted,
    destructive=True,  # its builds and pushes may replace registry tags
    example={
        "name": "release 1.4",
        "tasks": [
            {
                "action": "docker_build",
                "params": {"dockerfile": "FROM busybox\n", "tags": ["127.0.0.1:5000/team/app:1.4"]},
            },
            {
                "action": "docker_push",
                "params": {"image_name": "127.0.0.1:5000/team/app", "tag": "1.4"},
                "depends_on": [0],
            },
        ],
    },
)
async def batch_submit(agent: Agent, p: BatchSubmitParams) -> dict[str, Any]:
    """Submit several Docker tasks (docker_build, docker_push, docker_pull messages) as one
    batch in a queue; an entry may name earlier entries in depends_on by index. A serial batch
    (the default) waits for the queue's earlier batches; follow it with batch_status. Nothing
    is submitted if one entry is refused."""
    tasks: list[DockerTask] = []
    for index, entry in enumerate(p.tasks):
        where = f"params.tasks.{index}."
        if "queue" in entry.params:
            raise InvalidParams(
                f"{where}params.queue: a batch's tasks run in the batch's queue; give queue "
                "on the batch.",
                details={"field": f"{where}params.queue"},
            )
        command = REGISTRY.get(entry.action)
        assert command is not None
        params = parse(command.params, {**entry.params, "queue": p.queue}, prefix=f"{where}params.")
        assert isinstance(params, QueueOptions)
        task = await prepare_task(agent, TaskType(entry.action), params)
        for earlier in entry.depends_on:
            if not 0 <= earlier < index:
                why = "a cycle" if 0 <= earlier < len(p.tasks) else "no such entry"
                raise invalid(
                    task, str(earlier), f"{where}depends_on may name earlier entries only ({why})"
                )
            task.depends_on.append(tasks[earlier].id)
        tasks.append(task)
    sub = await agent.queue.submit_batch(tasks, name=p.name, queue=p.queue, serial=p.serial)
    return {"batch_id": sub.batch_id, "task_ids": sub.task_ids, "state": sub.state.value}


def _shown(view: BatchView) -> dict[str, Any]:
    return view.model_dump(mode="json")


@REGISTRY.command(
    "batch_status",
    BatchParams,
    result=BatchView,
    example={"batch_id": "123e4567-e89b-12d3-a456-426614174000"},
    read_only=True,
    idempotent=True,
)
async def batch_status(agent: Agent, p: BatchParams) -> dict[str, Any]:
    """A batch's state (queued, running, stopped, completed, failed, cancelled), its position
    among the queue's waiting batches, its tasks by status and one overall progress."""
    return _shown(await agent.queue.batch_status(p.batch_id))


@REGISTRY.command(
    "batch_list",
    BatchListParams,
    result=BatchList,
    example={"queue": "default"},
    read_only=True,
    idempotent=True,
)
async def batch_list(agent: Agent, p: BatchListParams) -> dict[str, Any]:
    """Every batch (of one queue, with queue), newest first, each as batch_status shows it."""
    return {"batches": [_shown(v) for v in await agent.queue.batch_views(p.queue)]}


_ID_EXAMPLE = {"batch_id": "123e4567-e89b-12d3-a456-426614174000"}


@REGISTRY.command("batch_stop", BatchParams, result=BatchView, example=_ID_EXAMPLE)
async def batch_stop(agent: Agent, p: BatchParams) -> dict[str, Any]:
    """Stop a queued or running batch: its running tasks finish, nothing else of it starts,
    and the queue's next batch waits until it is started again (batch_start)."""
    return _shown(await agent.queue.stop_batch(p.batch_id))


@REGISTRY.command("batch_start", BatchParams, result=BatchView, example=_ID_EXAMPLE)
async def batch_start(agent: Agent, p: BatchParams) -> dict[str, Any]:
    """Start a stopped batch again (a serial one runs when its turn comes: at once if it heads
    its queue's line)."""
    return _shown(await agent.queue.start_batch(p.batch_id))


@REGISTRY.command(
    "batch_cancel", BatchParams, result=BatchView, example=_ID_EXAMPLE, destructive=True
)
async def batch_cancel(agent: Agent, p: BatchParams) -> dict[str, Any]:
    """Cancel every unfinished task of a batch (running ones are stopped); it ends cancelled
    and the queue's next batch starts."""
    return _shown(await agent.queue.cancel_batch(p.batch_id))


@REGISTRY.command(
    "batch_remove", BatchParams, result=BatchRemoved, example=_ID_EXAMPLE, destructive=True
)
async def batch_remove(agent: Agent, p: BatchParams) -> dict[str, Any]:
    """Forget a batch that is not running (stop or cancel a running one first); its
    unfinished tasks are cancelled, its tasks' history stays."""
    await agent.queue.remove_batch(p.batch_id)
    return {"batch_id": p.batch_id, "removed": True}


@REGISTRY.command(
    "batch_move",
    BatchMoveParams,
    result=BatchView,
    example={**_ID_EXAMPLE, "position": 1},
    idempotent=True,
)
async def batch_move(agent: Agent, p: BatchMoveParams) -> dict[str, Any]:
    """Move a serial batch waiting in its queue's line to a position (1 runs next)."""
    return _shown(await agent.queue.move_batch(p.batch_id, p.position))
