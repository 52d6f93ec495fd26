"""Fixtures for the queue tests: a clean environment and an engine factory that closes what it
built. Helpers the tests import live in ``queue_helpers``."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from queue_helpers import (
    EngineFactory,
    HeldStore,
    Work,
    executors_for,
    make_settings,
    within,
)

from ai_admin.queue.engine import QueueEngine
from ai_admin.queue.executor import Executor
from ai_admin.queue.models import TaskType
from ai_admin.queue.sqlite_store import SqliteStore
from ai_admin.queue.store import QueueStore


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from the defaults: no ``AI_ADMIN_*`` variable leaks in from the shell."""
    for name in list(os.environ):
        if name.startswith("AI_ADMIN_"):
            monkeypatch.delenv(name)


@pytest.fixture
async def make_engine(tmp_path: Path) -> AsyncIterator[EngineFactory]:
    """Build engines on ``tmp_path/q.db`` (or ``db``, or ``store``); all are closed at teardown."""
    built: list[QueueEngine] = []

    async def make(
        executor: Executor | Mapping[TaskType, Executor] | None = None,
        *,
        db: Path | None = None,
        store: QueueStore | None = None,
        start: bool = True,
        seed: int = 0,
        **settings: Any,
    ) -> QueueEngine:
        engine = QueueEngine(
            store or SqliteStore(db or tmp_path / "q.db"),
            executors_for(executor if executor is not None else Work(block=False)),
            make_settings(tmp_path, **settings),
            rng=random.Random(seed),
        )
        built.append(engine)
        if start:
            await engine.start()
        return engine

    yield make
    for engine in reversed(built):
        await within(engine.close(grace_s=0))


@pytest.fixture
async def held_store(make_engine: EngineFactory, tmp_path: Path) -> AsyncIterator[HeldStore]:
    """A ``HeldStore`` on ``tmp_path/q.db`` (give it to ``make_engine`` as ``store``).

    It asks for ``make_engine`` so that it is torn down first: whatever a failing test left
    held is released before the engines close, so teardown does not wait for it."""
    store = HeldStore(SqliteStore(tmp_path / "q.db"))
    yield store
    store.release()
