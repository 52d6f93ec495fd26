"""The agent's data directory is its own: 0700, and every file in it 0600.

It holds the operator token and the task database (image names, build arguments, errors); other
users of the machine have no business reading either.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) owner-only; tighten it if it exists looser."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, DIR_MODE)
    return path


def is_private(path: Path) -> bool:
    """Whether no one but the owner may read or write ``path``."""
    return not path.stat().st_mode & 0o077
