"""A build reads only under the allowed roots (no path, ``..`` or symlink leads outside), and
the context it sends is the archive docker-py would have made, streamed."""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.api.build import process_dockerfile
from docker.utils.build import tar as docker_tar

from ai_admin.docker import build_context
from ai_admin.docker.build_context import resolve_context, resolve_dockerfile, stream_context
from ai_admin.errors import AiAdminError, ErrorCode, ExecutionError, InvalidParams


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/{app,app/sub,link-in -> app,escape -> outside,file.txt}, outside/secret."""
    root = tmp_path / "root"
    (root / "app" / "sub").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    (root / "app" / "sub" / "Dockerfile.dev").write_text("FROM scratch\n")
    (root / "file.txt").write_text("x\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM scratch\n")
    (root / "link-in").symlink_to(root / "app", target_is_directory=True)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "app" / "outside.Dockerfile").symlink_to(outside / "Dockerfile")
    return root


def _refusal(path: str | Path, roots: list[Path]) -> InvalidParams:
    with pytest.raises(InvalidParams) as caught:
        resolve_context(str(path), roots)
    return caught.value


@pytest.mark.parametrize(
    ("relative", "real"),
    [
        (".", "."),
        ("app", "app"),
        ("app/sub", "app/sub"),
        ("app/sub/..", "app"),
        ("link-in", "app"),  # a symlink that stays inside is followed
        ("link-in/sub", "app/sub"),
    ],
)
def test_inside_the_root(tree: Path, relative: str, real: str) -> None:
    assert resolve_context(f"{tree}/{relative}", [tree]) == (tree / real).resolve()


@pytest.mark.parametrize(
    "relative",
    [
        "../outside",
        "app/../../outside",
        "escape",
        "escape/.",
        "link-in/../escape",
        "..",
        "app/../..",
    ],
)
def test_outside_the_root_is_refused(tree: Path, relative: str) -> None:
    error = _refusal(f"{tree}/{relative}", [tree])
    assert error.code is ErrorCode.VALIDATION_PATH_NOT_ALLOWED
    assert not error.transient
    assert "outside the allowed roots" in error.message
    assert str(tree) in error.message
    assert error.details == {"context_path": f"{tree}/{relative}"}
    assert any(str(tree) in s for s in error.suggestions)


def _said(error: AiAdminError) -> str:
    """Everything a refusal tells the client."""
    return " ".join([error.message, *error.suggestions, str(error.details)])


def test_a_refusal_does_not_say_where_a_symlink_leads(tree: Path) -> None:
    (tree / "to-etc").symlink_to("/etc", target_is_directory=True)
    for name in ("escape", "escape/.", "to-etc", "link-in/../escape"):
        error = _refusal(tree / name, [tree])
        assert "outside the allowed roots" in error.message
        assert "outside" not in _said(error).replace("outside the allowed", ""), name
        assert "/etc" not in _said(error), name


def test_a_refusal_does_not_tell_whether_a_path_outside_the_roots_exists(tree: Path) -> None:
    (tree / "to-nowhere").symlink_to(tree.parent / "nowhere" / "deeper")
    present = _refusal(tree.parent / "outside", [tree])
    for missing in (tree.parent / "nowhere", tree / "to-nowhere", "/no/such/dir"):
        error = _refusal(missing, [tree])
        assert error.message.replace(str(missing), "X") == present.message.replace(
            str(tree.parent / "outside"), "X"
        )
        assert "nowhere" not in _said(error).replace(str(missing), "")


def test_any_of_several_roots(tree: Path) -> None:
    outside = tree.parent / "outside"
    assert resolve_context(str(outside), [tree, outside]) == outside.resolve()
    assert resolve_context(str(tree / "escape"), [tree, outside]) == outside.resolve()


def test_a_root_given_through_a_symlink(tmp_path: Path, tree: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(tree, target_is_directory=True)
    assert resolve_context(str(tree / "app"), [alias]) == (tree / "app").resolve()
    assert resolve_context(str(alias / "app"), [tree]) == (tree / "app").resolve()


def test_a_sibling_with_the_root_as_prefix_is_outside(tmp_path: Path, tree: Path) -> None:
    sibling = tmp_path / "root-other"
    sibling.mkdir()
    assert _refusal(sibling, [tree]).code is ErrorCode.VALIDATION_PATH_NOT_ALLOWED


def test_missing_and_non_directory_contexts(tree: Path) -> None:
    missing = _refusal(tree / "nope", [tree])
    assert "does not exist" in missing.message
    assert str(tree / "nope") in missing.suggestions[0]
    a_file = _refusal(tree / "file.txt", [tree])
    assert "is not a directory" in a_file.message
    loop = tree / "loop"
    loop.symlink_to(loop)
    assert "does not exist" in _refusal(loop, [tree]).message


def test_no_roots_no_directory_builds(tree: Path) -> None:
    error = _refusal(tree / "app", [])
    assert error.code is ErrorCode.VALIDATION_PATH_NOT_ALLOWED
    assert "no allowed_roots" in error.message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Dockerfile", "Dockerfile"),
        ("sub/Dockerfile.dev", "sub/Dockerfile.dev"),
        ("./sub/../Dockerfile", "Dockerfile"),
    ],
)
def test_dockerfile_inside_the_context(tree: Path, name: str, expected: str) -> None:
    context = resolve_context(str(tree / "app"), [tree])
    assert resolve_dockerfile(context, name) == expected


@pytest.mark.parametrize("name", ["../file.txt", "/etc/passwd", "outside.Dockerfile"])
def test_dockerfile_outside_the_context_is_refused(tree: Path, name: str) -> None:
    context = resolve_context(str(tree / "app"), [tree])
    with pytest.raises(InvalidParams) as caught:
        resolve_dockerfile(context, name)
    assert caught.value.code is ErrorCode.VALIDATION_PATH_NOT_ALLOWED
    assert name in caught.value.message


def test_missing_dockerfile(tree: Path) -> None:
    context = resolve_context(str(tree / "app"), [tree])
    with pytest.raises(InvalidParams) as caught:
        resolve_dockerfile(context, "Dockerfile.prod")
    assert caught.value.code is ErrorCode.VALIDATION_INVALID_PARAMS
    assert "Dockerfile.prod" in caught.value.message
    assert str(context) in caught.value.message


# --- the streamed context is the archive docker-py would send --------------------------------


def _members(archive: bytes) -> dict[str, tuple[object, ...]]:
    """Each member's type, link, mode, size, mtime (whole seconds) and content."""
    assert len(archive) % tarfile.RECORDSIZE == 0
    found: dict[str, tuple[object, ...]] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            file = tar.extractfile(member) if member.isfile() else None
            data = file.read() if file is not None else None
            name = re.sub(r"\.dockerfile\.[0-9a-f]+", ".dockerfile.X", member.name)
            if data is not None:  # the private name's length varies (docker-py: 39-40 digits)
                data = re.sub(rb"\.dockerfile\.[0-9a-f]+", b".dockerfile.X", data)
            found[name] = (
                member.type,
                member.linkname,
                member.mode,
                member.size if data is None else len(data),
                int(member.mtime),
                data,
            )
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src" / "deep" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "secret").mkdir()
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . /app\n")
    (root / "src" / "a.txt").write_text("a\n")
    (root / "src" / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    (root / "src" / "empty").write_bytes(b"")
    (root / "src" / "run.sh").write_text("#!/bin/sh\n")
    (root / "src" / "run.sh").chmod(0o755)
    (root / "src" / ("long-" * 30 + "name.txt")).write_text("long\n")
    (root / "src" / "deep" / "deeper" / "café.txt").write_text("unicode\n")
    (root / "src" / "link").symlink_to("a.txt")
    os.link(root / "src" / "a.txt", root / "src" / "hard")
    (root / "build.log").write_text("ignored\n")
    (root / "secret" / "key").write_text("ignored\n")
    (root / ".dockerignore").write_text("# comment\n*.log\nsecret/\n\n")
    os.mkfifo(root / "src" / "pipe")  # sent as a FIFO entry, never opened
    return root


def _docker_py_archive(root: Path, dockerfile: str) -> bytes:
    lines = (root / ".dockerignore").read_text().splitlines()
    exclude = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    with docker_tar(
        root, exclude=exclude, dockerfile=process_dockerfile(dockerfile, str(root))
    ) as f:
        data: bytes = f.read()
    return data


def test_the_stream_is_the_archive_docker_py_makes(project: Path) -> None:
    name, stream = stream_context(project, "Dockerfile")
    assert name == "Dockerfile"
    ours = _members(b"".join(stream))
    assert ours == _members(_docker_py_archive(project, "Dockerfile"))
    assert "build.log" not in ours
    assert not any(n.startswith("secret") for n in ours)
    assert ours["src/hard"][:2] == (tarfile.LNKTYPE, "src/a.txt")
    assert ours["src/link"][:2] == (tarfile.SYMTYPE, "a.txt")
    assert ours["src/run.sh"][2] == 0o755
    assert ours["src/pipe"][:1] == (tarfile.FIFOTYPE,)


def test_an_inline_dockerfile_goes_in_under_a_private_name(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "inline.Dockerfile"
    outside.write_text("FROM scratch\nCOPY src /src\n")
    name, stream = stream_context(project, "Dockerfile", inline=outside.read_text())
    assert re.fullmatch(r"\.dockerfile\.[0-9a-f]{40}", name)
    ours = _members(b"".join(stream))
    assert ours == _members(_docker_py_archive(project, str(outside)))
    assert ours[".dockerfile.X"][-1] == b"FROM scratch\nCOPY src /src\n"
    assert ours[".dockerignore"][-1] == b"*.log\nsecret/\n.dockerfile.X"


def test_the_stream_comes_in_blocks_and_reads_lazily(project: Path) -> None:
    _, stream = stream_context(project, "Dockerfile")
    (project / "late.txt").write_text("listed when the stream starts, not before\n")
    blocks = list(stream)
    assert "late.txt" in _members(b"".join(blocks))
    assert all(blocks)  # no empty chunk: it would end a chunked upload
    assert max(len(b) for b in blocks) <= 1 << 20


def _until_a_file_streams(stream: Iterator[bytes]) -> bytearray:
    """The stream read up to a big file's first block: that file is open and being sent."""
    sent = bytearray()
    for block in stream:
        sent += block
        if len(block) == 1 << 20:
            return sent
    raise AssertionError("no big file in the stream")


def _rest(stream: Iterator[bytes], sent: bytearray) -> AiAdminError | None:
    """Read the stream to its end into ``sent``; the error that ended it, if any."""
    try:
        for block in stream:
            sent += block
    except AiAdminError as exc:
        return exc
    return None


def test_a_file_that_shrinks_while_sent_fails_the_build_naming_it(project: Path) -> None:
    _, stream = stream_context(project, "Dockerfile")
    _until_a_file_streams(stream)
    (project / "src" / "big.bin").write_bytes(b"short")
    error = _rest(stream, bytearray())
    assert isinstance(error, ExecutionError)
    assert error.code is ErrorCode.DOCKER_BUILD_FAILED
    assert "src/big.bin" in error.message
    assert str(project / "src" / "big.bin") in error.suggestions[0]


# --- nothing from outside, whatever changes while the context is read ------------------------

SECRET = b"the secret outside the roots\n"


@pytest.fixture
def race(tmp_path: Path) -> tuple[Path, Path]:
    """(context under tmp/root, tmp/outside/notes.txt holding SECRET): a big file is sent
    before sub/, which holds a decoy notes.txt, so sub/ can be swapped while it streams."""
    context = tmp_path / "root" / "ctx"
    (context / "sub").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx\n")
    (context / "a-big.bin").write_bytes(os.urandom(3 * (1 << 20)))
    (context / "sub" / "notes.txt").write_text("decoy\n")
    (context / "z-late.txt").write_text("late\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_bytes(SECRET)
    (outside / "z-late.txt").write_bytes(SECRET)
    return context, outside


def _swap_for_symlink(path: Path, target: Path) -> None:
    path.rename(path.with_name(path.name + ".moved"))
    path.symlink_to(target, target_is_directory=target.is_dir())


def _leaks(error: AiAdminError | None, outside: Path) -> bool:
    return error is not None and str(outside) in _said(error)


def test_a_directory_swapped_for_a_symlink_while_a_file_streams_sends_nothing_from_outside(
    race: tuple[Path, Path],
) -> None:
    context, outside = race
    _, stream = stream_context(resolve_context(str(context), [context.parent]), "Dockerfile")
    sent = _until_a_file_streams(stream)
    _swap_for_symlink(context / "sub", outside)
    error = _rest(stream, sent)
    assert SECRET not in sent
    assert isinstance(error, ExecutionError)
    assert error.code is ErrorCode.DOCKER_BUILD_FAILED
    assert "changed while it was read: sub is no longer a directory" in error.message
    assert not _leaks(error, outside)


def test_a_file_swapped_for_a_symlink_goes_in_as_a_symlink_never_read(
    race: tuple[Path, Path],
) -> None:
    context, outside = race
    _, stream = stream_context(context, "Dockerfile")
    sent = _until_a_file_streams(stream)
    _swap_for_symlink(context / "z-late.txt", outside / "z-late.txt")
    assert _rest(stream, sent) is None
    assert SECRET not in sent
    members = _members(bytes(sent))
    assert members["z-late.txt"][:2] == (tarfile.SYMTYPE, str(outside / "z-late.txt"))


def _swap_after_stat(monkeypatch: pytest.MonkeyPatch, name: str, swap: Callable[[], None]) -> None:
    """Swap once, right after the reader has looked at ``name`` and before it opens it."""
    real_stat = os.stat

    def stat_then_swap(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        result = real_stat(path, *args, **kwargs)
        if path == name and kwargs.get("dir_fd") is not None:
            monkeypatch.setattr(build_context.os, "stat", real_stat)
            swap()
        return result

    monkeypatch.setattr(build_context.os, "stat", stat_then_swap)


def test_a_file_swapped_for_a_symlink_between_stat_and_open_fails_the_build(
    race: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, outside = race
    _swap_after_stat(
        monkeypatch, "z-late.txt", lambda: _swap_for_symlink(context / "z-late.txt", outside)
    )
    sent = bytearray()
    error = _rest(stream_context(context, "Dockerfile")[1], sent)
    assert SECRET not in sent
    assert isinstance(error, ExecutionError)
    assert "z-late.txt is no longer a regular file" in error.message
    assert not _leaks(error, outside)


@pytest.mark.timeout(30)  # a hang is the bug: fail fast rather than at the suite's limit
def test_a_file_swapped_for_a_fifo_between_stat_and_open_fails_without_hanging(
    race: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, _ = race

    def swap() -> None:
        (context / "z-late.txt").unlink()
        os.mkfifo(context / "z-late.txt")

    _swap_after_stat(monkeypatch, "z-late.txt", swap)
    error = _rest(stream_context(context, "Dockerfile")[1], bytearray())
    assert isinstance(error, ExecutionError)
    assert "z-late.txt is no longer a regular file" in error.message


@pytest.mark.parametrize("swapped", ["ctx", "."], ids=["the-context", "a-directory-above-it"])
def test_the_context_or_a_directory_above_it_swapped_after_the_check(
    race: tuple[Path, Path], swapped: str
) -> None:
    context, outside = race
    fake = outside / "ctx"
    fake.mkdir()
    (fake / "Dockerfile").write_bytes(SECRET)
    checked = resolve_context(str(context), [context.parent])
    _swap_for_symlink(context if swapped == "ctx" else context.parent, outside)
    if swapped == "ctx":
        context.unlink()
        context.symlink_to(fake, target_is_directory=True)
    sent = bytearray()
    error = _rest(stream_context(checked, "Dockerfile")[1], sent)
    assert SECRET not in sent
    assert isinstance(error, ExecutionError)
    assert error.code is ErrorCode.DOCKER_BUILD_FAILED
    assert "is no longer a directory" in error.message
    assert not _leaks(error, outside)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_every_descriptor_is_closed_at_the_end_or_when_abandoned(project: Path) -> None:
    before = _open_fds()
    b"".join(stream_context(project, "Dockerfile")[1])
    assert _open_fds() == before
    _, stream = stream_context(project, "Dockerfile")
    _until_a_file_streams(stream)
    assert _open_fds() > before
    stream.close()  # type: ignore[attr-defined]
    assert _open_fds() == before


# --- .dockerignore: its patterns as docker-py applies them, read only from a small file -------


@pytest.mark.parametrize(
    "patterns",
    [
        ["*.log", "secret/", "!secret/keep"],
        ["docs/**/*.md", "!docs/keep.md", "build", "**/tmp"],
        ["*", "!src", "src/deep/**", "!src/deep/deeper/café.txt"],
        [".", "./src/../build.log", "/secret", "src/*.txt"],
        ["Dockerfile", ".dockerignore"],
    ],
)
def test_dockerignore_patterns_select_what_docker_py_selects(
    project: Path, patterns: list[str]
) -> None:
    (project / "secret" / "keep").write_text("kept\n")
    (project / "docs" / "a" / "tmp").mkdir(parents=True)
    (project / "docs" / "a" / "x.md").write_text("x\n")
    (project / "docs" / "keep.md").write_text("k\n")
    (project / "docs" / "a" / "tmp" / "t").write_text("t\n")
    (project / ".dockerignore").write_text("\n".join(patterns) + "\n")
    ours = _members(b"".join(stream_context(project, "Dockerfile")[1]))
    assert ours == _members(_docker_py_archive(project, "Dockerfile"))


def _dockerignore_refusal(context: Path) -> InvalidParams:
    with pytest.raises(InvalidParams) as caught:
        build_context.read_dockerignore(context)
    streamed = _rest(stream_context(context, "Dockerfile")[1], bytearray())
    assert isinstance(streamed, InvalidParams)
    assert (streamed.code, streamed.message) == (caught.value.code, caught.value.message)
    assert caught.value.code is ErrorCode.VALIDATION_INVALID_PARAMS
    assert caught.value.details == {"context_path": str(context), "file": ".dockerignore"}
    assert str(context / ".dockerignore") in caught.value.suggestions[0]
    return caught.value


@pytest.mark.timeout(30)  # a hang is the bug: fail fast rather than at the suite's limit
def test_a_dockerignore_fifo_is_refused_without_hanging(project: Path) -> None:
    (project / ".dockerignore").unlink()
    os.mkfifo(project / ".dockerignore")
    assert "not a regular file" in _dockerignore_refusal(project).message


def test_a_dockerignore_symlink_is_refused_without_naming_its_target(
    project: Path, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere-ignore"
    target.write_text("*.log\n")
    (project / ".dockerignore").unlink()
    (project / ".dockerignore").symlink_to(target)
    error = _dockerignore_refusal(project)
    assert "is a symlink" in error.message
    assert "elsewhere" not in _said(error)


def test_a_dockerignore_directory_or_non_utf8_file_is_refused(project: Path) -> None:
    (project / ".dockerignore").write_bytes(b"*.log\n\xff\xfe\n")
    assert "not UTF-8" in _dockerignore_refusal(project).message
    (project / ".dockerignore").unlink()
    (project / ".dockerignore").mkdir()
    assert "not a regular file" in _dockerignore_refusal(project).message


def test_a_dockerignore_over_the_size_limit_is_refused(project: Path) -> None:
    limit = build_context.DOCKERIGNORE_MAX_BYTES
    assert limit == 1 << 20
    (project / ".dockerignore").write_bytes(b"*.log\n" + b"#" * (limit - 6))
    assert build_context.read_dockerignore(project) == ["*.log"]
    (project / ".dockerignore").write_bytes(b"#" * (limit + 1))
    error = _dockerignore_refusal(project)
    assert f"larger than {limit} bytes" in error.message


def test_no_dockerignore_is_no_patterns(project: Path) -> None:
    (project / ".dockerignore").unlink()
    assert build_context.read_dockerignore(project) is None
