"""What a build may read: a directory under the configured ``allowed_roots``, never through a
symlink.

``resolve_context`` checks the path (symlinks resolved, so neither ``..`` nor a symlink leads
outside the roots). Anything in the context may be swapped for a symlink between that check and
the last byte sent, so the context is then read through directory file descriptors: the context
reached from ``/`` one directory at a time, each directory and file below it opened relative to
its parent with ``O_NOFOLLOW``, each file checked (``fstat``) to be the regular file whose size
the archive announces. A symlink inside the context goes into the archive as a symlink, as
docker-py sends it; its target is never opened. A swap the reader runs into fails the build; no
swap can make it read outside the directory that was checked.
"""

from __future__ import annotations

import errno
import grp
import io
import os
import pwd
import secrets
import stat
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from docker.utils.build import PatternMatcher, normalize_slashes

from ai_admin.errors import ErrorCode, ExecutionError, InvalidParams

DOCKERIGNORE_MAX_BYTES = 1 << 20

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW  # a directory to list
_SEARCH = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | _NOFOLLOW  # one to open below
_FILE = os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW  # O_NONBLOCK: opening a FIFO cannot hang


def _refuse(message: str, path: str, *suggestions: str) -> InvalidParams:
    return InvalidParams(
        message,
        code=ErrorCode.VALIDATION_PATH_NOT_ALLOWED,
        details={"context_path": path},
        suggestions=suggestions or None,
    )


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _where_it_leads(path: str) -> Path:
    """As much of ``path`` resolved as exists (for a path that does not fully exist)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return Path(os.path.abspath(path))


def resolve_context(path: str, allowed_roots: Sequence[Path]) -> Path:
    """The real directory to send as build context, or a refusal naming why.

    A path leading outside the roots is refused the same way whether or not its target exists,
    and without naming the target: a refusal tells nothing about the agent's machine.
    """
    if not allowed_roots:
        raise _refuse(
            "Builds from a directory are disabled: the agent has no allowed_roots configured.",
            path,
        )
    try:
        real: Path | None = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        real = None
    roots = [Path(root).resolve() for root in allowed_roots]
    listed = ", ".join(str(r) for r in roots)
    if not _under(real or _where_it_leads(path), roots):
        raise _refuse(
            f"Build context {path!r} is outside the allowed roots ({listed}).",
            path,
            f"Move the build context {path} under one of the allowed roots: {listed}.",
            "Or add its directory to `allowed_roots` in the agent's configuration.",
        )
    if real is None:
        raise _refuse(
            f"Build context {path!r} does not exist.",
            path,
            f"Check that {path} exists on the agent's machine: the agent reads the context, "
            "not the client.",
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


# --- opening without following symlinks ------------------------------------------------------


def _changed(path: Path, shown: str, kind: str) -> ExecutionError:
    return ExecutionError(
        f"The build context changed while it was read: {shown} is no longer {kind}.",
        code=ErrorCode.DOCKER_BUILD_FAILED,
        details={"file": str(path)},
        suggestions=[
            "Do not change the context while it is being sent; build from a copy if something "
            "else writes to it.",
            "A symlink that replaces part of the context is never followed; submit the build "
            "again once the context is stable.",
        ],
    )


def _open_below(dir_fd: int, name: str, flags: int, path: Path, shown: str) -> int:
    """``name`` in ``dir_fd``, a directory and not a symlink (else the context changed).

    ``path`` and ``shown`` name it in errors: its full path and how the client knows it.
    """
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _changed(path, shown, "a directory") from None
        raise _unreadable(path, shown, exc) from exc


def _open_context(context: Path) -> int:
    """The checked context directory, reached from ``/`` without following any symlink."""
    names = context.parts[1:]
    fd = os.open("/", _SEARCH if names else _DIR)
    try:
        for depth, name in enumerate(names, start=1):
            flags = _DIR if depth == len(names) else _SEARCH
            parent, fd = fd, _open_below(fd, name, flags, context, str(context))
            os.close(parent)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Directories:
    """The directories along the path being archived, each opened from its parent.

    The archive goes in sorted order, so consecutive members mostly share their directories:
    those stay open; at most one descriptor per level is open at a time.
    """

    def __init__(self, context: Path, root_fd: int) -> None:
        self._context = context
        self._fds = [root_fd]
        self._names: list[str] = []

    def of(self, parents: list[str]) -> int:
        """The open directory ``parents`` (path parts below the context)."""
        keep = 0
        while keep < min(len(parents), len(self._names)) and parents[keep] == self._names[keep]:
            keep += 1
        self._close_below(keep)
        for name in parents[keep:]:
            shown = "/".join([*self._names, name])
            path = self._context / shown
            self._fds.append(_open_below(self._fds[-1], name, _SEARCH, path, shown))
            self._names.append(name)
        return self._fds[-1]

    def _close_below(self, depth: int) -> None:
        while len(self._names) > depth:
            self._names.pop()
            os.close(self._fds.pop())

    def close(self) -> None:
        """Close every directory opened here (not the context's own descriptor)."""
        self._close_below(0)


# --- .dockerignore ----------------------------------------------------------------------------


def _bad_dockerignore(context: Path, problem: str) -> InvalidParams:
    return InvalidParams(
        f"The build context's .dockerignore {problem}.",
        code=ErrorCode.VALIDATION_INVALID_PARAMS,
        details={"context_path": str(context), "file": ".dockerignore"},
        suggestions=[
            f"Make {context / '.dockerignore'} a regular UTF-8 text file of at most "
            f"{DOCKERIGNORE_MAX_BYTES} bytes, or remove it.",
        ],
    )


def read_dockerignore(context: Path) -> list[str] | None:
    """The context's ``.dockerignore`` patterns (None without one), checked as the build reads
    them: a symlink, FIFO, device, directory, oversize or non-UTF-8 file is refused."""
    fd = _open_context(context)
    try:
        return _dockerignore(context, fd)
    finally:
        os.close(fd)


def _dockerignore(context: Path, root_fd: int) -> list[str] | None:
    try:
        fd = os.open(".dockerignore", _FILE, dir_fd=root_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _bad_dockerignore(context, "is a symlink; it is read only as a file") from None
        raise _bad_dockerignore(context, f"cannot be read: {exc.strerror}") from None
    try:
        data = _small_file(context, fd)
    finally:
        os.close(fd)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise _bad_dockerignore(context, "is not UTF-8 text") from None
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _small_file(context: Path, fd: int) -> bytes:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise _bad_dockerignore(context, "is not a regular file (a FIFO, device or directory)")
    too_big = f"is larger than {DOCKERIGNORE_MAX_BYTES} bytes"
    if info.st_size > DOCKERIGNORE_MAX_BYTES:
        raise _bad_dockerignore(context, too_big)
    data = bytearray()
    while len(data) <= DOCKERIGNORE_MAX_BYTES:
        try:
            block = os.read(fd, DOCKERIGNORE_MAX_BYTES + 1 - len(data))
        except OSError as exc:
            raise _bad_dockerignore(context, f"cannot be read: {exc.strerror}") from None
        if not block:
            return bytes(data)
        data += block
    raise _bad_dockerignore(context, too_big)  # it grew while read


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
    instead of being written whole to a temporary file first, and read through directory
    descriptors (see the module's docstring). Returns the Dockerfile's name in the archive and
    the stream.
    """
    if inline is not None:
        dockerfile = f".dockerfile.{secrets.token_hex(20)}"
    return dockerfile, _archive(context, dockerfile, inline)


def _archive(context: Path, dockerfile: str, inline: str | None) -> Iterator[bytes]:
    # A generator throughout: even listing the files happens in the thread that sends them.
    root_fd = _open_context(context)
    try:
        exclude = _dockerignore(context, root_fd)
        extra: list[tuple[str, str]] = []
        if inline is not None:
            ignored = "\n".join([*(exclude or [".dockerignore"]), dockerfile])
            extra = [(".dockerignore", ignored), (dockerfile, inline)]
        matcher = PatternMatcher([*(exclude or []), f"!{dockerfile}"])
        files = _listing(context, root_fd, matcher)
        yield from _coalesced(_tar(context, root_fd, files, extra))
    finally:
        os.close(root_fd)


def _listing(context: Path, root_fd: int, matcher: PatternMatcher) -> list[str]:
    """The paths docker-py's ``exclude_paths`` gives (same patterns, same pruning), sorted,
    found through open directories instead of by path."""
    found: list[str] = []
    _walk(context, root_fd, "", matcher, found)
    return sorted(found)


def _walk(
    context: Path, dir_fd: int, prefix: str, matcher: PatternMatcher, found: list[str]
) -> None:
    try:
        with os.scandir(dir_fd) as entries:
            children = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    except OSError as exc:
        raise _unreadable(context / prefix, prefix or str(context), exc) from exc
    for name, is_dir in children:
        path = prefix + name
        excluded = matcher.matches(path)
        if not excluded:
            found.append(path)
        if is_dir and (not excluded or _included_below(matcher, path)):
            fd = _open_below(dir_fd, name, _DIR, context / path, path)
            try:
                _walk(context, fd, path + "/", matcher, found)
            finally:
                os.close(fd)


def _included_below(matcher: PatternMatcher, path: str) -> bool:
    """An excluded directory is still walked when an exception (``!dir/file``) starts with it."""
    prefix = normalize_slashes(path)
    return any(p.exclusion and p.cleaned_pattern.startswith(prefix) for p in matcher.patterns)


class _Headers:
    """Tar headers as ``TarFile.gettarinfo`` makes them, from a ``stat`` result already taken.

    Keeps gettarinfo's table that turns a second name of a file into a hard-link entry.
    """

    def __init__(self) -> None:
        archive = tarfile.TarFile(fileobj=io.BytesIO(), mode="w")
        self.format = (archive.format, archive.encoding, archive.errors)
        self._inodes: dict[tuple[int, int], str] = {}
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}

    def linked(self, info: os.stat_result, name: str) -> str | None:
        """The member this regular file is a hard link of, if already archived."""
        first = self._inodes.get((info.st_ino, info.st_dev))
        return first if info.st_nlink > 1 and first not in (None, name) else None

    def header(self, name: str, info: os.stat_result, linkname: str = "") -> bytes | None:
        """The member's header; None for what a tar cannot hold (a socket)."""
        kind = _kind(info.st_mode, hard_link=bool(linkname))
        if kind is None:
            return None
        if kind == tarfile.REGTYPE and info.st_ino:
            self._inodes[(info.st_ino, info.st_dev)] = name
        member = tarfile.TarInfo(name)
        member.mode = info.st_mode
        member.uid, member.gid = info.st_uid, info.st_gid
        member.size = info.st_size if kind == tarfile.REGTYPE else 0
        member.mtime = int(info.st_mtime)
        member.type, member.linkname = kind, linkname
        member.uname = self._name(self._users, info.st_uid, lambda i: pwd.getpwuid(i)[0])
        member.gname = self._name(self._groups, info.st_gid, lambda i: grp.getgrgid(i)[0])
        if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            member.devmajor, member.devminor = os.major(info.st_rdev), os.minor(info.st_rdev)
        return member.tobuf(*self.format)

    @staticmethod
    def _name(cache: dict[int, str], key: int, look_up: Callable[[int], str]) -> str:
        if key not in cache:
            try:
                cache[key] = look_up(key)
            except KeyError:
                cache[key] = ""
        return cache[key]


def _kind(mode: int, *, hard_link: bool) -> bytes | None:
    if stat.S_ISREG(mode):
        return tarfile.LNKTYPE if hard_link else tarfile.REGTYPE
    kinds = {
        stat.S_ISDIR: tarfile.DIRTYPE,
        stat.S_ISFIFO: tarfile.FIFOTYPE,
        stat.S_ISLNK: tarfile.SYMTYPE,
        stat.S_ISCHR: tarfile.CHRTYPE,
        stat.S_ISBLK: tarfile.BLKTYPE,
    }
    return next((kind for test, kind in kinds.items() if test(mode)), None)


def _tar(
    context: Path, root_fd: int, files: list[str], extra: list[tuple[str, str]]
) -> Iterator[bytes]:
    headers = _Headers()
    dirs = _Directories(context, root_fd)
    size = 0
    try:
        for name in files:
            for piece in _member(context, dirs, headers, name):
                size += len(piece)
                yield piece
    finally:
        dirs.close()
    for name, text in extra:
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        header = info.tobuf(*headers.format)
        yield header + data + _NUL * _padding(len(data))
        size += len(header) + len(data) + _padding(len(data))
    end = 2 * tarfile.BLOCKSIZE
    yield _NUL * (end + -(size + end) % tarfile.RECORDSIZE)


def _member(context: Path, dirs: _Directories, headers: _Headers, name: str) -> Iterator[bytes]:
    """One member: its header, and a regular file's content, read from its open directory."""
    *parents, base = name.split("/")
    dir_fd = dirs.of(parents)
    try:
        info = os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
        linkname = ""
        if stat.S_ISREG(info.st_mode):
            linkname = headers.linked(info, name) or ""
            if not linkname:
                yield from _regular_file(context, dir_fd, base, headers, name)
                return
        elif stat.S_ISLNK(info.st_mode):
            linkname = os.readlink(base, dir_fd=dir_fd)
    except OSError as exc:
        raise _unreadable(context / name, name, exc) from exc
    header = headers.header(name, info, linkname)
    if header is not None:
        yield header


def _regular_file(
    context: Path, dir_fd: int, base: str, headers: _Headers, name: str
) -> Iterator[bytes]:
    """The header from the opened file's own ``fstat``, then exactly that many bytes of it."""
    try:
        fd = os.open(base, _FILE, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _changed(context / name, name, "a regular file") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _changed(context / name, name, "a regular file")
        header = headers.header(name, info)
        assert header is not None  # a regular file always has one
        yield header
        yield from _file_blocks(context, fd, name, info.st_size)
        yield _NUL * _padding(info.st_size)
    finally:
        os.close(fd)


def _file_blocks(context: Path, fd: int, name: str, size: int) -> Iterator[bytes]:
    try:
        left = size
        while left:
            block = os.read(fd, min(_READ_BYTES, left))
            if not block:
                raise OSError(errno.EIO, f"{size - left} of {size} bytes, then the end")
            left -= len(block)
            yield block
    except OSError as exc:
        raise _unreadable(context / name, name, exc) from exc


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
