"""A task's progress numbers are kept with it in the SQLite store, and a document written
before the field existed still loads (no migration: the task is stored as its JSON document)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ai_admin.queue.models import DockerTask, ProgressDetail, TaskStatus, TaskType
from ai_admin.queue.sqlite_store import SqliteStore


async def test_progress_numbers_survive_a_reopen_and_old_documents_load(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    detail = ProgressDetail(
        phase="downloading", bytes_done=5, bytes_total=10, rate_bps=2.5, eta_s=2.0, layers_total=1
    )
    moving = DockerTask(task_type=TaskType.PULL, status=TaskStatus.DOWNLOADING)
    moving.progress_detail = detail
    old = DockerTask(task_type=TaskType.PULL, status=TaskStatus.PENDING)
    store = SqliteStore(path)
    await store.open()
    await store.save([moving, old])
    await store.close()

    with sqlite3.connect(path) as db:
        docs = dict(db.execute("SELECT id, doc FROM tasks"))
    assert "progress_detail" not in json.loads(docs[old.id])  # None is left out, as before
    stored = json.loads(docs[moving.id])["progress_detail"]
    assert stored == {k: v for k, v in detail.to_dict().items() if v is not None}

    store = SqliteStore(path)
    await store.open()
    try:
        loaded = await store.get(moving.id)
        assert loaded is not None
        assert loaded.progress_detail == detail
        loaded_old = await store.get(old.id)
        assert loaded_old is not None
        assert loaded_old.progress_detail is None
        assert await store.set_aside() == []
    finally:
        await store.close()
