"""``docker_push``: validating → preparing → uploading (bytes of all layers)."""

from __future__ import annotations

from typing import Any

from ai_admin.config import Settings
from ai_admin.docker.client import Chunk, DockerSession
from ai_admin.docker.params import PushParams, RegistryAuth
from ai_admin.docker.progress import PUSHED, LayerBytes, LayerCount, push_digest
from ai_admin.docker.reference import Reference
from ai_admin.errors import ErrorCode, ExecutionError
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskStatus
from ai_admin.validation import parse


class PushProgress:
    """Bytes pushed, mapped onto [start, end] percent of the task's bar, and reported as
    numbers (phase ``uploading``: bytes and layers of this push)."""

    def __init__(self, ctx: TaskContext, start: float = 0.0, end: float = 100.0) -> None:
        self.ctx = ctx
        self.upload = LayerBytes("Pushing")
        self.layers = LayerCount(PUSHED)
        self.digests: dict[str, str] = {}
        self._start, self._end = start, end

    async def on_chunk(self, chunk: Chunk) -> None:
        finished = self.layers.done
        self.layers.update(chunk)
        # A layer's end counts too: it brings the bytes up to the layer's size.
        if self.upload.update(chunk) or self.layers.done != finished:
            share = (self._end - self._start) * self.upload.fraction()
            self.ctx.progress(
                self._start + share,
                self.upload.describe("Uploaded"),
                phase="uploading",
                bytes_done=self.upload.bytes_done,
                bytes_total=self.upload.bytes_total,
                layers_done=self.layers.done,
                layers_total=self.layers.total,
            )
        if found := push_digest(chunk):
            tag, digest = found
            self.digests[tag] = digest
        status = chunk.get("status")
        if isinstance(status, str) and not chunk.get("id"):
            self.ctx.log(status)


async def push_reference(
    session: DockerSession,
    ctx: TaskContext,
    ref: Reference,
    auth: RegistryAuth | None,
    progress: PushProgress,
) -> None:
    """Push one tag (or all tags when ``ref.tag`` is None); fails unless a digest comes back."""
    auth_config = auth.to_docker(ref.registry_name) if auth else None
    before = len(progress.digests)
    await session.stream(
        lambda c: c.push(
            ref.repository, tag=ref.tag, stream=True, decode=True, auth_config=auth_config
        ),
        progress.on_chunk,
    )
    if len(progress.digests) == before:
        raise ExecutionError(
            f"The engine ended the push of {ref} without reporting a digest.",
            code=ErrorCode.DOCKER_PUSH_FAILED,
            details={"image": str(ref)},
        )


async def push(ctx: TaskContext, settings: Settings) -> dict[str, Any]:
    await ctx.step(TaskStatus.VALIDATING)
    params = parse(PushParams, ctx.params)
    ref = params.reference()
    await ctx.step(TaskStatus.PREPARING, f"Checking that {ref} exists locally")
    session = DockerSession(
        "push", settings.docker_host, image=str(ref), registry=ref.registry_name
    )
    async with session:
        if ref.tag is not None:
            await session.call(lambda c: c.inspect_image(str(ref)))
        await ctx.step(TaskStatus.UPLOADING, f"Pushing {ref} to {ref.registry_name}")
        progress = PushProgress(ctx)
        await push_reference(session, ctx, ref, params.auth, progress)
    digest = progress.digests.get(ref.tag or "") or next(iter(progress.digests.values()))
    return {
        "image": ref.repository,
        "tag": ref.tag,
        "digest": digest,
        "digests": progress.digests,
        "bytes_uploaded": progress.upload.bytes_done,
    }
