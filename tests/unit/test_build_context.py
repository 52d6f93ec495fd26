"""A build reads only under the allowed roots (no path, ``..`` or symlink leads outside), and
the context it sends is the archive docker-py would have made, streamed."""

from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path

import pytest
from docker.api.build import process_dockerfile
from docker.utils.build import tar as docker_tar

from ai_admin.docker.build_context import _tar, resolve_context, resolve_dockerfile, stream_context
from ai_admin.errors import ErrorCode, ExecutionError, InvalidParams


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


def test_a_symlink_escape_says_where_it_leads(tree: Path) -> None:
    error = _refusal(tree / "escape", [tree])
    assert str((tree.parent / "outside").resolve()) in error.suggestions[0]


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


def test_a_file_that_shrinks_while_sent_fails_the_build_naming_it(project: Path) -> None:
    pieces = _tar(project, ["src/big.bin"], [])
    header = next(pieces)
    assert header.startswith(b"src/big.bin")
    (project / "src" / "big.bin").write_bytes(b"short")
    with pytest.raises(ExecutionError) as caught:
        list(pieces)
    assert caught.value.code is ErrorCode.DOCKER_BUILD_FAILED
    assert "src/big.bin" in caught.value.message
    assert str(project / "src" / "big.bin") in caught.value.suggestions[0]
