"""Commands that queue Docker work: docker_build, docker_push, docker_pull.

Their params are the executors' own models (``ai_admin.docker.params``) plus the queue's
options, so a message is validated exactly as the executor will read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, Field, SecretStr

from ai_admin.commands.registry import REGISTRY
from ai_admin.config import DEFAULT_QUEUE, QueueName
from ai_admin.docker.build_context import read_dockerignore, resolve_context, resolve_dockerfile
from ai_admin.docker.build_options import check_network_mode
from ai_admin.docker.params import BuildParams, PullParams, PushParams
from ai_admin.queue.models import DockerTask, Priority, TaskPriority, TaskType
from ai_admin.wire.results import Submitted

if TYPE_CHECKING:
    from ai_admin.agent import Agent

_WEEK_S = 7 * 24 * 3600


class QueueOptions(BaseModel):
    priority: Priority = Field(
        "normal", description="critical runs first; FIFO within one priority."
    )
    timeout: float | None = Field(
        None, gt=0, le=_WEEK_S, description="Seconds before the task ends as timeout."
    )
    max_retries: int | None = Field(
        None, ge=0, le=100, description="Automatic retries of transient failures."
    )
    queue: QueueName = DEFAULT_QUEUE
    depends_on: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list,
        max_length=100,
        description="Ids of tasks that must complete first; if one of them fails, is "
        "cancelled or times out, this task fails with QUEUE_DEPENDENCY_FAILED.",
    )


_QUEUE_KEYS = frozenset(QueueOptions.model_fields)


class DockerBuildCommand(BuildParams, QueueOptions):
    # A build needs context_path, dockerfile or both: the model checks it, the command's
    # description says it, and the OpenAPI document's request schema states it (as an anyOf
    # at its root). The params schema does not: assistants' tool APIs refuse a tool list in
    # which one input schema has a combinator at its root.
    AT_LEAST_ONE_OF: ClassVar[tuple[str, ...]] = ("context_path", "dockerfile")


class DockerPushCommand(PushParams, QueueOptions):
    pass


class DockerPullCommand(PullParams, QueueOptions):
    pass


SUBMIT_MODELS: dict[TaskType, type[QueueOptions]] = {
    TaskType.BUILD: DockerBuildCommand,
    TaskType.PUSH: DockerPushCommand,
    TaskType.PULL: DockerPullCommand,
}


def params_ref(action: str) -> dict[str, str]:
    """The OpenAPI reference to a submit command's params schema (for the request schemas of
    commands that carry submit messages)."""
    return {"$ref": f"#/components/schemas/{SUBMIT_MODELS[TaskType(action)].__name__}"}


def _plain(value: Any) -> Any:
    """The validated params as plain data, credentials included (the queue redacts them)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def task_of(task_type: TaskType, p: QueueOptions) -> DockerTask:
    """The task a validated submit command asks for (its queue options, its executor's
    params)."""
    return DockerTask(
        task_type=task_type,
        params=_plain(p.model_dump(exclude=set(_QUEUE_KEYS))),
        priority=TaskPriority.parse(p.priority),
        timeout_s=p.timeout,
        max_retries=p.max_retries,
        queue=p.queue,
        depends_on=list(p.depends_on),
    )


async def prepare_task(agent: Agent, task_type: TaskType, p: QueueOptions) -> DockerTask:
    """The task of a validated submit command, once what can be checked before it runs is:
    a build's network mode and its context under the allowed roots (the build checks again
    when it runs)."""
    if isinstance(p, DockerBuildCommand):
        check_network_mode(p.network_mode, agent.settings.allowed_network_modes)
        if p.context_path is not None:  # file system reads: off the loop
            await asyncio.to_thread(_check_context, p, agent.settings.allowed_roots)
    return task_of(task_type, p)


async def submit(agent: Agent, task_type: TaskType, p: QueueOptions) -> dict[str, Any]:
    sub = await agent.queue.submit(await prepare_task(agent, task_type, p))
    return {
        "task_id": sub.task_id,
        "status": sub.status.value,
        "queue_position": sub.queue_position,
        "merged_into": sub.merged_into,
    }


_SUBMIT_RETURNS = (
    " Answers at once with the task id, its status and queue position (and merged_into when "
    "an identical task is already waiting or running); follow it with queue_task_status."
)


@REGISTRY.command(
    "docker_build",
    DockerBuildCommand,
    result=Submitted,
    destructive=True,  # with push: true it replaces the registry's tags
    example={
        "dockerfile": 'FROM busybox\nRUN echo "hello"\n',
        "tags": ["127.0.0.1:5000/team/app:1.4"],
        "push": True,
    },
    description_suffix=_SUBMIT_RETURNS,
)
async def docker_build(agent: Agent, p: DockerBuildCommand) -> dict[str, Any]:
    """Queue an image build from a directory under the agent's allowed roots (context_path)
    and/or inline Dockerfile text (give at least one of the two), with tags, build args,
    labels and target; push: true also pushes every tag afterwards, replacing what the
    registry held under it. Progress follows the build's steps."""
    return await submit(agent, TaskType.BUILD, p)


def _check_context(p: DockerBuildCommand, allowed_roots: Sequence[Path]) -> None:
    assert p.context_path is not None
    context = resolve_context(p.context_path, allowed_roots)
    read_dockerignore(context)
    if p.dockerfile is None:
        resolve_dockerfile(context, p.dockerfile_name)


@REGISTRY.command(
    "docker_push",
    DockerPushCommand,
    result=Submitted,
    destructive=True,  # it replaces what the registry held under the tag
    example={"image_name": "username/myapp", "tag": "latest"},
    description_suffix=_SUBMIT_RETURNS,
)
async def docker_push(agent: Agent, p: DockerPushCommand) -> dict[str, Any]:
    """Queue a push of a local image tag (or all_tags) to its registry, replacing what the
    registry held under that tag, with per-task credentials in auth or the agent's Docker
    login. Progress counts the bytes of all layers; the result carries the pushed digest."""
    return await submit(agent, TaskType.PUSH, p)


@REGISTRY.command(
    "docker_pull",
    DockerPullCommand,
    result=Submitted,
    example={"image_name": "127.0.0.1:5000/team/app", "tag": "1.4"},
    description_suffix=_SUBMIT_RETURNS,
)
async def docker_pull(agent: Agent, p: DockerPullCommand) -> dict[str, Any]:
    """Queue a pull of an image by tag or digest, optionally for a platform and with
    credentials in auth. Progress counts downloaded bytes, then extraction; the result carries
    the image id and digest."""
    return await submit(agent, TaskType.PULL, p)
