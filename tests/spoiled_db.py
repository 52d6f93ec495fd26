"""Ways a task database can be spoiled, for the tests of a database that cannot be opened."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def random_bytes(db: Path) -> None:
    db.write_bytes(os.urandom(64 * 1024))


def not_a_database(db: Path) -> None:
    db.write_text("these are notes, not a database\n")


def a_directory(db: Path) -> None:
    db.unlink()
    db.mkdir()


def damaged_pages(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[:4096] + os.urandom(len(data) - 4096))  # the header survives


SPOILERS: list[Callable[[Path], None]] = [random_bytes, not_a_database, a_directory, damaged_pages]
