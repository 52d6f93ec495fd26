"""``docker_pull``: validating → preparing → pulling → downloading → pulling (extracting)."""

from __future__ import annotations

from typing import Any

from ai_admin.config import Settings
from ai_admin.docker.client import Chunk, DockerSession
from ai_admin.docker.params import PullParams
from ai_admin.docker.progress import (
    PULL_EXTRACTED,
    PULL_FETCHED,
    LayerBytes,
    LayerCount,
    pull_digest,
)
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskStatus
from ai_admin.validation import parse

_DOWNLOAD_SHARE = 80.0  # percent of the bar for downloading; extracting takes the rest


_FETCHING = frozenset({"Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum"})
_FETCHED = PULL_FETCHED


class _PullProgress:
    """Steps and one bar for a pull whose layers download in parallel and extract in order.

    The engine starts extracting the first layer while later ones still download, so the task
    stays ``downloading`` until every layer is fetched and only then moves on to ``pulling``
    (extracting), never back. The bar counts downloaded and extracted bytes against the bytes
    of all layers together: a layer extracted early does not fill it. The numbers follow the
    step: the bytes and layers downloaded while ``downloading``, then those extracted.
    """

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.download = LayerBytes("Downloading")
        self.extract = LayerBytes("Extracting")
        self.fetched = LayerCount(PULL_FETCHED)
        self.extracted = LayerCount(PULL_EXTRACTED)
        self.digest: str | None = None
        self._phase = TaskStatus.PULLING
        self._fetching: set[str] = set()

    async def _enter(self, phase: TaskStatus, description: str) -> None:
        if self._phase is not phase:
            self._phase = phase
            await self.ctx.step(phase, description)

    async def on_chunk(self, chunk: Chunk) -> None:
        self.digest = pull_digest(chunk) or self.digest
        layer, status = chunk.get("id"), chunk.get("status")
        if isinstance(layer, str) and status in _FETCHING:
            self._fetching.add(layer)
            if self._phase is TaskStatus.PULLING and not self.extract.layers:
                await self._enter(TaskStatus.DOWNLOADING, "Downloading layers")
        elif isinstance(layer, str) and status in _FETCHED:
            self._fetching.discard(layer)
        finished = self.fetched.done + self.extracted.done
        downloaded = self.download.update(chunk)
        extracted = self.extract.update(chunk)
        self.fetched.update(chunk)
        self.extracted.update(chunk)
        # A layer's end counts too: it brings the bytes up to the layer's size.
        moving = bool(self.download.layers or self.extract.layers)
        layer_ended = moving and self.fetched.done + self.extracted.done != finished
        if downloaded or extracted or layer_ended:
            self._report()  # before the step moves on: the download's last numbers are its own
        if self.extract.layers and not self._fetching:
            await self._enter(TaskStatus.PULLING, "Extracting layers")
        if isinstance(status, str) and not chunk.get("id"):
            self.ctx.log(status)

    def _report(self) -> None:
        if self._phase is TaskStatus.DOWNLOADING:
            phase, moved, layers = "downloading", self.download, self.fetched
        else:
            phase, moved, layers = "extracting", self.extract, self.extracted
        self.ctx.progress(
            self._percent(),
            self._describe(),
            phase=phase,
            bytes_done=moved.bytes_done,
            bytes_total=moved.bytes_total,
            layers_done=layers.done,
            layers_total=layers.total,
        )

    def _percent(self) -> float:
        total = max(self.download.bytes_total, self.extract.bytes_total)
        if not total:
            return 0.0
        moved = _DOWNLOAD_SHARE * self.download.bytes_done
        moved += (100.0 - _DOWNLOAD_SHARE) * self.extract.bytes_done
        return moved / total

    def _describe(self) -> str:
        if self._phase is TaskStatus.DOWNLOADING:
            return self.download.describe("Downloaded")
        return self.extract.describe("Extracted")


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
