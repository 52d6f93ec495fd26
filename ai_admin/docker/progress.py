"""Turning the engine's JSON stream into honest numbers: bytes per layer, build steps.

Pure functions of the chunks Docker sends, so they are tested without an engine. Pull and push
report per layer (``{"id": "a1b2", "status": "Downloading", "progressDetail": {"current": …,
"total": …}}``); the classic builder reports ``Step 3/7 : RUN …`` lines.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

Chunk = dict[str, Any]

_DONE_STATUSES = frozenset(
    {"Download complete", "Pull complete", "Pushed", "Layer already exists", "Already exists"}
)
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_DIGEST = re.compile(r"(sha256:[0-9a-f]{64})")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]+)$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(slots=True)
class _Layer:
    current: int = 0
    total: int = 0
    done: bool = False


@dataclass
class LayerBytes:
    """Bytes moved across all layers for one phase ("Downloading", "Extracting", "Pushing")."""

    phase: str
    layers: dict[str, _Layer] = field(default_factory=dict)

    def update(self, chunk: Chunk) -> bool:
        """Account for one chunk; True if it belonged to this phase.

        Only layers seen in this phase count: the "Pulling from" line (whose id is the tag) and
        layers that already exist move no bytes. The engine may report more bytes than a layer's
        total, or no total at all; a layer's total is then taken as at least what moved, so the
        fraction never exceeds 1 and a finished layer never counts fewer bytes than before.
        """
        layer_id, status = chunk.get("id"), chunk.get("status")
        if not isinstance(layer_id, str) or not isinstance(status, str):
            return False
        if status == self.phase:
            layer = self.layers.setdefault(layer_id, _Layer())
            detail = chunk.get("progressDetail") or {}
            current = int(detail.get("current") or 0)
            layer.total = max(layer.total, int(detail.get("total") or 0))
            layer.current = min(current, layer.total) if layer.total else current
            return True
        finished = self.layers.get(layer_id)
        if finished is not None and status in _DONE_STATUSES:
            finished.done = True
            finished.total = finished.current = max(finished.total, finished.current)
        return False

    @property
    def bytes_done(self) -> int:
        return sum(layer.current for layer in self.layers.values())

    @property
    def bytes_total(self) -> int:
        return sum(max(layer.total, layer.current) for layer in self.layers.values())

    def fraction(self) -> float:
        total = self.bytes_total
        return self.bytes_done / total if total else 0.0

    def describe(self, verb: str) -> str:
        return (
            f"{verb} {_mb(self.bytes_done)} of {_mb(self.bytes_total)} ({len(self.layers)} layers)"
        )


_LAYER_STATUSES = frozenset(
    {
        "Pulling fs layer",
        "Waiting",
        "Downloading",
        "Verifying Checksum",
        "Download complete",
        "Extracting",
        "Pull complete",
        "Already exists",
        "Preparing",
        "Pushing",
        "Pushed",
        "Layer already exists",
    }
)
_MOUNTED = "Mounted from "  # a push's layer the registry took from another repository
PULL_FETCHED = frozenset({"Download complete", "Already exists", "Pull complete"})
PULL_EXTRACTED = frozenset({"Already exists", "Pull complete"})
PUSHED = frozenset({"Pushed", "Layer already exists"})


@dataclass
class LayerCount:
    """How many of the image's layers a pull or push has seen, and how many are through the
    phase whose end ``done_statuses`` name (layers that already existed count as done)."""

    done_statuses: frozenset[str]
    seen: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)

    def update(self, chunk: Chunk) -> None:
        layer_id, status = chunk.get("id"), chunk.get("status")
        if not isinstance(layer_id, str) or not isinstance(status, str):
            return
        mounted = status.startswith(_MOUNTED)
        if status in _LAYER_STATUSES or mounted:  # not "Pulling from <tag>", whose id is a tag
            self.seen.add(layer_id)
        if status in self.done_statuses or mounted:
            self.finished.add(layer_id)

    @property
    def done(self) -> int:
        return len(self.finished)

    @property
    def total(self) -> int:
        return len(self.seen)


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


@dataclass
class BuildSteps:
    """Where a classic-builder build is, and what it printed last (for failure reports)."""

    step: int = 0
    total: int = 0
    instruction: str = ""
    image_id: str | None = None
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=10))

    def update(self, chunk: Chunk) -> list[str]:
        """Account for one chunk; returns its output lines."""
        aux = chunk.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            self.image_id = aux["ID"]
        text = chunk.get("stream")
        if not isinstance(text, str):
            return []
        # The classic builder wraps a step's stderr in colour codes (ESC[91m … ESC[0m).
        lines = [line for line in _ANSI.sub("", text).splitlines() if line.strip()]
        for line in lines:
            self._line(line.rstrip())
        return lines

    def _line(self, line: str) -> None:
        if match := _STEP.match(line):
            self.step, self.total, self.instruction = int(match[1]), int(match[2]), match[3]
            self.last_lines.clear()
        elif match := _BUILT.match(line):
            self.image_id = self.image_id or match[1]
        self.last_lines.append(line)

    def fraction(self) -> float:
        """Steps finished so far (the current one is still running)."""
        return (self.step - 1) / self.total if self.total else 0.0

    def describe(self) -> str:
        if not self.total:
            return "Building"
        return f"Step {self.step}/{self.total}: {self.instruction}"[:200]


def push_digest(chunk: Chunk) -> tuple[str, str] | None:
    """(tag, digest) from a push's closing chunk."""
    aux = chunk.get("aux")
    if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
        return str(aux.get("Tag") or ""), aux["Digest"]
    return None


def pull_digest(chunk: Chunk) -> str | None:
    status = chunk.get("status")
    if isinstance(status, str) and status.startswith("Digest: "):
        match = _DIGEST.search(status)
        return match[1] if match else None
    return None


def error_of(chunk: Chunk) -> Chunk | None:
    """The error a chunk carries, if any: the engine reports push and build failures in-band."""
    if "error" in chunk or "errorDetail" in chunk:
        return chunk
    return None
