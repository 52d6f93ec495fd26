"""A small file system a test can fill: a tmpfs mounted for that test alone.

Mounting needs root (the test machine runs the suite as root); without it the test fails and
says so, it is never skipped. ``fill`` writes one file until the disk refuses another byte;
removing that file gives the space back.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

_CHUNKS = (1 << 16, 1 << 12, 1 << 9, 1)  # large first, then down to the last byte


@contextlib.contextmanager
def small_disk(where: Path, size: str = "2m") -> Iterator[Path]:
    """``where`` as a fresh tmpfs of ``size`` (mode 0755, as a data directory often starts)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert mounted.returncode == 0, f"cannot mount a tmpfs (run the tests as root): {mounted}"
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(where)], check=True)  # a process held it


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until its file system is full; returns the file."""
    path = directory / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in _CHUNKS:
            chunk = b"\0" * size
            try:
                while os.write(fd, chunk):
                    pass
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    assert os.statvfs(directory).f_bavail == 0, "the disk is not full"
    return path
