"""One run of one task: what the engine keeps while the executor works, as a small state machine.

    LAUNCHED ──begin()──▶ RUNNING ──decide()──▶ FINISHING ──end()──▶ DONE

A stop (cancel, pause, shutdown) may be requested while the run is launched or running: it
cancels the job once the executor has begun, else the executor never starts. Once the outcome
is decided, nothing can stop the run; an action waits for ``done`` instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from ai_admin.queue.context import RunContext
from ai_admin.queue.models import DockerTask


class Stop(StrEnum):
    """Why a run was told to stop."""

    CANCEL = "cancel"
    PAUSE = "pause"
    SHUTDOWN = "shutdown"


class RunPhase(IntEnum):
    LAUNCHED = 0  # its job exists; the executor has not begun
    RUNNING = 1  # the executor works (or was told to stop)
    FINISHING = 2  # the outcome is decided and being recorded; the slot is free
    DONE = 3  # the outcome is recorded (or its write failed: ``error``)


@dataclass(slots=True, eq=False)
class Run:
    """A task while its executor works: how to stop it, and what a stopping action learns."""

    task: DockerTask
    ctx: RunContext
    started_s: float
    job: asyncio.Task[None] | None = None
    phase: RunPhase = RunPhase.LAUNCHED
    stop: Stop | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # The "running" write, queued at launch; the outcome is written after it.
    started: asyncio.Future[None] | None = None
    # For the pause or cancel that stopped the run: the state recorded, or the write's error.
    final: DockerTask | None = None
    error: BaseException | None = None

    @property
    def settling(self) -> bool:
        """Stopping or recording its outcome: an action must wait for ``done``."""
        return self.stop is not None or self.phase >= RunPhase.FINISHING

    def begin(self) -> None:
        self.phase = RunPhase.RUNNING

    def decide(self) -> None:
        """The outcome is decided (with no await since): from now on nothing stops the run."""
        self.phase = RunPhase.FINISHING

    def end(self) -> None:
        self.phase = RunPhase.DONE
        self.done.set()

    def request_stop(self, reason: Stop) -> bool:
        """Tell the run to stop, unless it is stopping or recording its outcome already."""
        if self.settling or self.job is None:
            return False
        self.stop = reason
        self.ctx.stop()
        if self.phase is RunPhase.RUNNING:  # else ``_run`` sees ``stop`` and skips the executor
            self.job.cancel()
        return True
