"""``docker_build``: validating → preparing (context) → building (steps) → uploading (push).

The numbers a build reports: while the engine takes in a context directory, the bytes sent
(phase ``sending context``; the total is known only once it is all sent); then the step and
the steps in all (phase ``building``); then the bytes pushed, if it pushes. An inline
Dockerfile's context is a few bytes, so it reports no bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import partial
from typing import Any

from ai_admin.config import Settings
from ai_admin.docker.build_context import resolve_context, resolve_dockerfile, stream_context
from ai_admin.docker.build_options import check_network_mode
from ai_admin.docker.client import Chunk, DockerSession, StreamingClient
from ai_admin.docker.params import BuildParams
from ai_admin.docker.progress import BuildSteps, error_of
from ai_admin.docker.push import PushProgress, push_reference
from ai_admin.docker.reference import Reference, parse_reference
from ai_admin.errors import ErrorCode, ExecutionError
from ai_admin.queue.executor import TaskContext
from ai_admin.queue.models import TaskStatus
from ai_admin.validation import parse

_BUILD_SHARE_WHEN_PUSHING = 60.0
_CONTEXT_REPORT_BYTES = 256 * 1024  # the context's bytes are reported every this many


class _BuildProgress:
    def __init__(self, ctx: TaskContext, session: DockerSession, end: float) -> None:
        self.ctx = ctx
        self.session = session
        self.steps = BuildSteps()
        self._end = end

    async def on_chunk(self, chunk: Chunk) -> None:
        step = self.steps.step
        for line in self.steps.update(chunk):
            self.ctx.log(line)
        if self.steps.step != step:
            self.ctx.progress(
                self._end * self.steps.fraction(),
                self.steps.describe(),
                phase="building",
                step=self.steps.step,
                steps_total=self.steps.total,
            )
        if error_of(chunk) is not None:
            raise self._failed(chunk)

    def _failed(self, chunk: Chunk) -> ExecutionError:
        error = self.session.chunk_error(chunk)
        steps = self.steps
        where = f" at step {steps.step}/{steps.total} ({steps.instruction})" if steps.total else ""
        return ExecutionError(
            f"{error.message.rstrip('.')}{where}.",
            code=error.code,
            details={
                **error.details,
                "step": steps.step or None,
                "total_steps": steps.total or None,
                "instruction": steps.instruction or None,
                "last_output": list(steps.last_lines),
            },
            suggestions=error.suggestions,
            transient=error.transient,
        )


def _tag(client: StreamingClient, image_id: str, ref: Reference) -> bool:
    return bool(client.tag(image_id, ref.repository, ref.tag))


def _counted(chunks: Iterator[bytes], ctx: TaskContext) -> Iterator[bytes]:
    """``chunks`` as they are sent, reporting the bytes gone so far (from the sending thread)."""
    sent = reported = 0
    try:
        for chunk in chunks:
            sent += len(chunk)
            if sent - reported >= _CONTEXT_REPORT_BYTES:
                reported = sent
                ctx.progress(0.0, _sending(sent), phase="sending context", bytes_done=sent)
            yield chunk
        ctx.progress(
            0.0, _sending(sent), phase="sending context", bytes_done=sent, bytes_total=sent
        )
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # the archive's generator closes its directory descriptor


def _sending(sent: int) -> str:
    return f"Sending the build context: {sent / 1_000_000:.1f} MB"


def _build_source(params: BuildParams, settings: Settings, ctx: TaskContext) -> dict[str, Any]:
    """docker-py's arguments for the context: a directory (streamed), inline text, or both."""
    if params.context_path is None:
        return {"fileobj": io.BytesIO((params.dockerfile or "").encode())}
    context = resolve_context(params.context_path, settings.allowed_roots)
    if params.dockerfile is None:
        name, stream = stream_context(context, resolve_dockerfile(context, params.dockerfile_name))
    else:  # sent under a private name, as docker-py does with a Dockerfile outside the context
        name, stream = stream_context(context, "Dockerfile", inline=params.dockerfile)
    return {"fileobj": _counted(stream, ctx), "custom_context": True, "dockerfile": name}


async def build(ctx: TaskContext, settings: Settings) -> dict[str, Any]:
    await ctx.step(TaskStatus.VALIDATING)
    params = parse(BuildParams, ctx.params)
    # Checked at submit too; again here for tasks from the Python API or an older configuration.
    check_network_mode(params.network_mode, settings.allowed_network_modes)
    refs = [parse_reference(t, default_tag="latest") for t in params.tags]
    first = str(refs[0]) if refs else None
    source = _build_source(params, settings, ctx)
    await ctx.step(TaskStatus.PREPARING, "Preparing the build context")
    session = DockerSession("build", settings.docker_host, image=first, path=params.context_path)
    async with session:
        await session.call(lambda c: c.ping())
        await ctx.step(TaskStatus.BUILDING, "Building")
        end = _BUILD_SHARE_WHEN_PUSHING if params.push else 100.0
        progress = _BuildProgress(ctx, session, end)
        await session.stream(
            lambda c: c.build(
                **source,
                tag=first,
                rm=True,
                forcerm=True,
                decode=True,
                nocache=params.no_cache,
                pull=params.pull,
                buildargs=params.build_args or None,
                labels=params.labels or None,
                target=params.target,
                network_mode=params.network_mode,
                platform=params.platform,
            ),
            progress.on_chunk,
        )
        image_id = progress.steps.image_id
        if image_id is None:
            raise ExecutionError(
                "The build ended without producing an image.",
                code=ErrorCode.DOCKER_BUILD_FAILED,
                details={"last_output": list(progress.steps.last_lines)},
            )
        for ref in refs[1:]:
            await session.call(partial(_tag, image_id=image_id, ref=ref))
        ctx.progress(end, f"Built {image_id.removeprefix('sha256:')[:12]}")
    result: dict[str, Any] = {"image_id": image_id, "tags": [str(r) for r in refs]}
    if params.push:
        result["digests"] = await _push_tags(ctx, settings, params, refs)
    return result


async def _push_tags(
    ctx: TaskContext, settings: Settings, params: BuildParams, refs: list[Reference]
) -> dict[str, str]:
    await ctx.step(TaskStatus.UPLOADING, f"Pushing {len(refs)} tag(s)")
    digests: dict[str, str] = {}
    share = (100.0 - _BUILD_SHARE_WHEN_PUSHING) / len(refs)
    for i, ref in enumerate(refs):
        start = _BUILD_SHARE_WHEN_PUSHING + i * share
        progress = PushProgress(ctx, start, start + share)
        session = DockerSession(
            "push", settings.docker_host, image=str(ref), registry=ref.registry_name
        )
        async with session:
            await push_reference(session, ctx, ref, params.auth, progress)
        digests[str(ref)] = next(iter(progress.digests.values()))
    return digests
