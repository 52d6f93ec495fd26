"""Which directories a build may read: only under the configured ``allowed_roots``.

Paths are resolved (symlinks followed) before the check, so neither ``..`` nor a symlink can
lead a build outside the roots. The context is then streamed to the engine as it is read.
"""

from __future__ import annotations

import errno
import io
import secrets
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from docker.utils.build import exclude_paths

from ai_admin.errors import ErrorCode, ExecutionError, InvalidParams


def _refuse(message: str, path: str, *suggestions: str) -> InvalidParams:
    return InvalidParams(
        message,
        code=ErrorCode.VALIDATION_PATH_NOT_ALLOWED,
        details={"context_path": path},
        suggestions=suggestions or None,
    )


def resolve_context(path: str, allowed_roots: Sequence[Path]) -> Path:
    """The real directory to send as build context, or a refusal naming why."""
    if not allowed_roots:
        raise _refuse(
            "Builds from a directory are disabled: the agent has no allowed_roots configured.",
            path,
        )
    try:
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        raise _refuse(
            f"Build context {path!r} does not exist.",
            path,
            f"Check that {path} exists on the agent's machine: the agent reads the context, "
            "not the client.",
        ) from None
    roots = [Path(root).resolve() for root in allowed_roots]
    listed = ", ".join(str(r) for r in roots)
    if not any(real == root or real.is_relative_to(root) for root in roots):
        shown = path if str(real) == path else f"{path} (which is {real})"
        raise _refuse(
            f"Build context {path!r} is outside the allowed roots ({listed}).",
            path,
            f"Move the build context {shown} under one of the allowed roots: {listed}.",
            "Or add its directory to `allowed_roots` in the agent's configuration.",
        )
    if not real.is_dir():
        raise _refuse(
            f"Build context {path!r} is not a directory.",
            path,
            f"Give the directory that holds the Dockerfile, not the file {path}.",
        )
    return real


def resolve_dockerfile(context: Path, name: str) -> str:
    """The Dockerfile's path relative to the context; it may not point outside it."""
    real = (context / name).resolve()
    if not real.is_relative_to(context):
        raise _refuse(
            f"Dockerfile {name!r} is outside the build context.",
            name,
            f"Give dockerfile_name as a path inside the build context {context}.",
        )
    if not real.is_file():
        raise InvalidParams(
            f"Dockerfile {name!r} not found in the build context {context}.",
            code=ErrorCode.VALIDATION_INVALID_PARAMS,
            details={"dockerfile_name": name},
        )
    return str(real.relative_to(context))


# --- the context as the engine receives it --------------------------------------------------

_READ_BYTES = 1 << 20
_SEND_BYTES = 1 << 16
_NUL = b"\0"


def stream_context(
    context: Path, dockerfile: str, inline: str | None = None
) -> tuple[str, Iterator[bytes]]:
    """The context as a tar stream, read from disk while the engine takes it in.

    The archive is the one docker-py's ``build(path=...)`` makes (``.dockerignore`` applied, an
    inline Dockerfile added under a private name), but produced block by block as it is sent
    instead of being written whole to a temporary file first. Returns the Dockerfile's name in
    the archive and the stream.
    """
    if inline is not None:
        dockerfile = f".dockerfile.{secrets.token_hex(20)}"
    return dockerfile, _archive(context, dockerfile, inline)


def _archive(context: Path, dockerfile: str, inline: str | None) -> Iterator[bytes]:
    # A generator throughout: even listing the files happens in the thread that sends them.
    try:
        exclude = _dockerignore(context)
        extra: list[tuple[str, str]] = []
        if inline is not None:
            ignored = "\n".join([*(exclude or [".dockerignore"]), dockerfile])
            extra = [(".dockerignore", ignored), (dockerfile, inline)]
        files = sorted(exclude_paths(str(context), list(exclude or []), dockerfile=dockerfile))
    except OSError as exc:
        raise _unreadable(Path(exc.filename or context), str(exc.filename or context), exc) from exc
    yield from _coalesced(_tar(context, files, extra))


def _dockerignore(context: Path) -> list[str] | None:
    path = context / ".dockerignore"
    if not path.exists():
        return None
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _tar(root: Path, files: list[str], extra: list[tuple[str, str]]) -> Iterator[bytes]:
    # A TarFile only for gettarinfo(), which also keeps the table that turns hard links into
    # link entries; the archive's bytes are produced here.
    archive = tarfile.TarFile(fileobj=io.BytesIO(), mode="w")
    header_format = (archive.format, archive.encoding, archive.errors)
    size = 0
    for name in files:
        path = root / name
        try:
            info = archive.gettarinfo(str(path), arcname=name)
        except OSError as exc:
            raise _unreadable(path, name, exc) from exc
        if info is None:  # a socket: nothing to send
            continue
        info.mtime = int(info.mtime)
        header = info.tobuf(*header_format)
        yield header
        size += len(header)
        if info.isfile():
            yield from _file_blocks(path, name, info.size)
            size += info.size + _padding(info.size)
            yield _NUL * _padding(info.size)
    for name, text in extra:
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        header = info.tobuf(*header_format)
        yield header + data + _NUL * _padding(len(data))
        size += len(header) + len(data) + _padding(len(data))
    end = 2 * tarfile.BLOCKSIZE
    yield _NUL * (end + -(size + end) % tarfile.RECORDSIZE)


def _file_blocks(path: Path, name: str, size: int) -> Iterator[bytes]:
    try:
        with path.open("rb") as file:
            left = size
            while left:
                block = file.read(min(_READ_BYTES, left))
                if not block:
                    raise OSError(errno.EIO, f"{size - left} of {size} bytes, then the end")
                left -= len(block)
                yield block
    except OSError as exc:
        raise _unreadable(path, name, exc) from exc


def _coalesced(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Small pieces (headers, small files) joined into blocks: fewer sends, no empty chunk."""
    buffer = bytearray()
    for piece in pieces:
        if len(piece) >= _SEND_BYTES:
            if buffer:
                yield bytes(buffer)
                buffer.clear()
            yield piece
            continue
        buffer += piece
        if len(buffer) >= _SEND_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _padding(size: int) -> int:
    return -size % tarfile.BLOCKSIZE


def _unreadable(path: Path, name: str, exc: OSError) -> ExecutionError:
    # Not an OSError: raised while the request body is sent, it would pass for a broken
    # connection to the engine.
    return ExecutionError(
        f"The build context could not be read: {name}: {exc.strerror or exc}.",
        code=ErrorCode.DOCKER_BUILD_FAILED,
        details={"file": str(path)},
        suggestions=[
            f"Make {path} readable by the agent's user, or leave it out with .dockerignore.",
            "Do not change the context while it is being sent.",
        ],
    )
