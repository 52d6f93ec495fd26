"""Commands on the named queues themselves: create, list, delete (their tasks are steered by
the queue_* commands, which take ``queue``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field, field_validator

from ai_admin.commands.registry import REGISTRY, NoParams
from ai_admin.config import DEFAULT_QUEUE, QueueName, QueueSettings
from ai_admin.wire.queues import QueueDeleted, QueueList, QueueView

if TYPE_CHECKING:
    from ai_admin.agent import Agent


class QueueCreateParams(QueueSettings):
    model_config = ConfigDict(extra="forbid")

    name: QueueName


class QueueDeleteParams(NoParams):
    queue: QueueName = Field(json_schema_extra={"not": {"const": DEFAULT_QUEUE}})

    @field_validator("queue")
    @classmethod
    def _not_default(cls, queue: str) -> str:
        if queue == DEFAULT_QUEUE:
            raise ValueError("the queue 'default' cannot be deleted")
        return queue


@REGISTRY.command(
    "queue_create",
    QueueCreateParams,
    result=QueueView,
    example={"name": "bulk", "max_concurrent": 1},
)
async def queue_create(agent: Agent, p: QueueCreateParams) -> dict[str, Any]:
    """Create a named queue with its own limits (max_concurrent, max_queue_size,
    default_timeout_s, max_retries; one left out is the agent's setting). Tasks, batches and
    the queue_* commands name it with queue. Kept across restarts."""
    limits = QueueSettings.model_validate(p.model_dump(exclude={"name"}, exclude_unset=True))
    return (await agent.queue.create_queue(p.name, limits)).model_dump(mode="json")


@REGISTRY.command("queue_list", NoParams, result=QueueList, read_only=True, idempotent=True)
async def queue_list(agent: Agent, p: NoParams) -> dict[str, Any]:
    """Every queue (default first) with its limits, pause state and how many of its tasks run
    and wait."""
    return {"queues": [q.model_dump(mode="json") for q in agent.queue.queue_views()]}


@REGISTRY.command(
    "queue_delete",
    QueueDeleteParams,
    result=QueueDeleted,
    example={"queue": "bulk"},
    destructive=True,
)
async def queue_delete(agent: Agent, p: QueueDeleteParams) -> dict[str, Any]:
    """Delete a named queue that holds no unfinished task (default always stays; a queue of
    the configuration file comes back at the next start)."""
    await agent.queue.delete_queue(p.queue)
    return {"queue": p.queue, "deleted": True}
