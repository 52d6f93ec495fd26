"""``docker_pull``: validating → preparing → pulling → downloading → pulling (extracting)."""

from __future__ import annotations

from typing import Any

from ai_admin.config import Settings
from ai_admin.docker.client import Chunk, DockerSession
from ai_admin.docker.params import PullParams
from ai_admin.docker.progress import LayerBytes, pull_digest
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskStatus
from ai_admin.validation import parse

_DOWNLOAD_SHARE = 80.0  # percent of the bar for downloading; extracting takes the rest


class _PullProgress:
    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.download = LayerBytes("Downloading")
        self.extract = LayerBytes("Extracting")
        self.digest: str | None = None
        self._phase = TaskStatus.PULLING

    async def _enter(self, phase: TaskStatus, description: str) -> None:
        if self._phase is not phase:
            self._phase = phase
            await self.ctx.step(phase, description)

    async def on_chunk(self, chunk: Chunk) -> None:
        self.digest = pull_digest(chunk) or self.digest
        if self.download.update(chunk):
            await self._enter(TaskStatus.DOWNLOADING, "Downloading layers")
            self.ctx.progress(
                _DOWNLOAD_SHARE * self.download.fraction(), self.download.describe("Downloaded")
            )
        if self.extract.update(chunk):
            await self._enter(TaskStatus.PULLING, "Extracting layers")
            extracted = (100.0 - _DOWNLOAD_SHARE) * self.extract.fraction()
            self.ctx.progress(_DOWNLOAD_SHARE + extracted, self.extract.describe("Extracted"))
        status = chunk.get("status")
        if isinstance(status, str) and not chunk.get("id"):
            self.ctx.log(status)


async def pull(ctx: TaskContext, settings: Settings) -> dict[str, Any]:
    await ctx.step(TaskStatus.VALIDATING)
    params = parse(PullParams, ctx.params)
    ref = params.reference()
    auth = params.auth.to_docker(ref.registry_name) if params.auth else None
    await ctx.step(TaskStatus.PREPARING, "Connecting to the Docker engine")
    session = DockerSession(
        "pull", settings.docker_host, image=str(ref), registry=ref.registry_name
    )
    async with session:
        await session.call(lambda c: c.ping())
        await ctx.step(TaskStatus.PULLING, f"Pulling {ref} from {ref.registry_name}")
        progress = _PullProgress(ctx)
        await session.stream(
            lambda c: c.pull(
                str(ref), stream=True, decode=True, auth_config=auth, platform=params.platform
            ),
            progress.on_chunk,
        )
        image = await session.call(lambda c: c.inspect_image(str(ref)))
    return {
        "image": str(ref),
        "image_id": image.get("Id"),
        "digest": progress.digest,
        "repo_digests": image.get("RepoDigests", []),
        "bytes_downloaded": progress.download.bytes_done,
        "size_bytes": image.get("Size"),
    }
