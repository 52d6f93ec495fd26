"""A Python base image for building the project's Dockerfile where no registry can be reached.

The Dockerfile takes its base as a build argument (``BASE_IMAGE``, ``python:3.11-slim`` by
default). A test machine cannot pull that, so this module makes a stand-in from files on this
machine: the interpreter running the tests (its binary, its standard library, the libraries
``ldd`` names), pip, a busybox shell, and a wheelhouse holding the project's dependencies and
build backend at the versions installed here. The image sets ``PIP_NO_INDEX`` and
``PIP_FIND_LINKS``, so the Dockerfile's own ``pip install`` runs unchanged and offline (the test
builds with ``--network none``).

The image is cached in the engine under a hash of its inputs (``dockerenv.ensure_image``): a
manifest of the interpreter's files and the requirement list, so a warm run builds nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pip
from dockerenv import HarnessError, ensure_image, shared_libraries

PYTHON_IMAGE = "ai-admin-test-base:python"
ROOT = Path(__file__).resolve().parents[2]

# Parts of the standard library the agent never loads, left out to keep the image small.
_SKIPPED = frozenset(
    {
        "site-packages",
        "dist-packages",
        "test",
        "idlelib",
        "tkinter",
        "turtledemo",
        "lib2to3",
        "ensurepip",
    }
)


def _stdlib() -> Path:
    return Path(os.__file__).resolve().parent


def _interpreter() -> Path:
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def _stdlib_files(stdlib: Path) -> Iterator[Path]:
    for path in sorted(stdlib.rglob("*")):
        top = path.relative_to(stdlib).parts[0]
        if top in _SKIPPED or top.startswith("config-") or not path.is_file():
            continue
        if path.name.startswith("_tkinter"):
            continue
        yield path


def requirements() -> list[str]:
    """What the Dockerfile's ``pip install`` needs: the project's dependencies and its build
    backend, read from pyproject.toml."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [*pyproject["build-system"]["requires"], *pyproject["project"]["dependencies"]]


def _installed_versions() -> str:
    """``pip freeze`` of this environment: the image gets the versions the tests run with."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise HarnessError(f"pip freeze failed: {result.stderr.strip()}")
    return result.stdout


def _download_wheels(target: Path, constraints: str) -> None:
    target.mkdir(parents=True)
    pinned = target.parent / "constraints.txt"
    pinned.write_text(constraints)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--dest",
            str(target),
            "--constraint",
            str(pinned),
            *requirements(),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    pinned.unlink()
    if result.returncode != 0:
        raise HarnessError(
            "pip download of the image's wheels failed (the package index pip is configured "
            f"with must be reachable once; the image is cached afterwards):\n{result.stderr}"
        )


def _wheel_libraries(wheels: Path) -> set[Path]:
    """Host libraries the wheels' compiled modules need (libgcc_s for Rust-built ones, ...)."""
    needed: set[Path] = set()
    with tempfile.TemporaryDirectory() as unpacked:
        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                names = [n for n in archive.namelist() if ".so" in Path(n).name]
                if not names:
                    continue
                where = Path(unpacked) / wheel.stem
                archive.extractall(where)
            for name in names:
                needed.update(shared_libraries(where / name))
    return needed


def _copy(rootfs: Path, source: Path, target: Path | None = None) -> None:
    """Copy ``source`` to its own absolute path (or ``target``'s) under ``rootfs``, keeping its
    mode and times (a copied ``.pyc`` stays valid only if its source keeps its mtime)."""
    where = target or source.resolve()
    destination = rootfs / where.relative_to(where.anchor)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)


def ensure_python_image(client: docker.DockerClient, workdir: Path, shell_image: str) -> str:
    """Build (or reuse) ``ai-admin-test-base:python`` on top of ``shell_image`` (busybox)."""
    interpreter = _interpreter()
    stdlib = _stdlib()
    prefix = stdlib.parent.parent  # <prefix>/lib/python3.X
    pip_dir = Path(pip.__file__).resolve().parent
    site_packages = stdlib / "site-packages"
    files = list(_stdlib_files(stdlib))
    elf = [interpreter, *(f for f in files if f.suffix == ".so")]
    libraries: set[Path] = set()
    for binary in elf:
        libraries.update(shared_libraries(binary))
    pip_files = [p for p in sorted(pip_dir.rglob("*")) if p.is_file()]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    dockerfile = f"""\
FROM {shell_image}
COPY rootfs/ /
COPY wheels/ /wheels/
RUN ln -s {interpreter} /usr/local/bin/python3 && ln -s {interpreter} /usr/local/bin/python \\
    && ln -s {interpreter} {prefix}/bin/python3 && ln -s {interpreter} {prefix}/bin/python \\
    && chmod 755 /root
ENV PATH={prefix}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels LANG=C.UTF-8
CMD ["python3"]
"""
    constraints = _installed_versions()
    manifest = [
        f"{p}\0{p.stat().st_size}\0{p.stat().st_mtime_ns}"
        for p in [interpreter, *files, *pip_files, *sorted(libraries)]
    ]
    inputs: list[str | bytes | Path] = [dockerfile, constraints, *requirements(), *manifest]

    def assemble(context: Path) -> None:
        rootfs = context / "rootfs"
        _download_wheels(context / "wheels", constraints)
        for library in sorted(libraries | _wheel_libraries(context / "wheels")):
            _copy(rootfs, library, library)
        _copy(rootfs, interpreter)
        (rootfs / "usr/local/bin").mkdir(parents=True, exist_ok=True)
        for path in files:
            _copy(rootfs, path)
        for path in pip_files:
            _copy(rootfs, path, site_packages / "pip" / path.relative_to(pip_dir))
        (rootfs / site_packages.relative_to(site_packages.anchor)).mkdir(
            parents=True, exist_ok=True
        )
        (rootfs / "tmp").mkdir(mode=0o1777, exist_ok=True)
        (rootfs / "tmp").chmod(0o1777)
        (context / "Dockerfile").write_text(dockerfile)

    if not (stdlib / "os.py").is_file() or not stdlib.name.startswith(version):
        raise HarnessError(f"no standard library found at {stdlib}")
    ensure_image(client, PYTHON_IMAGE, inputs, assemble, workdir)
    return PYTHON_IMAGE
