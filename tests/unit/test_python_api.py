"""The Python API, used exactly as the README's usage examples write it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from queue_helpers import Work, make_settings, within

# The names the README's examples import, from where they import them.
from ai_admin import DockerTask, TaskQueue, TaskType
from ai_admin.errors import ErrorCode, ExecutionError


async def test_the_readmes_usage_examples(tmp_path: Path) -> None:
    work = Work()
    queue = TaskQueue(executors=dict.fromkeys(TaskType, work), settings=make_settings(tmp_path))
    try:
        # 1. Push Docker Image
        task = DockerTask(
            task_type=TaskType.PUSH, params={"image_name": "username/myapp", "tag": "latest"}
        )
        task_id = await queue.add_task(task)
        assert isinstance(task_id, str)
        await work.started(task_id)

        # 2. Monitor Task Status
        task = await queue.get_task(task_id)
        assert task is not None
        assert task.status.value == "running"
        assert task.progress == 0
        assert isinstance(task.current_step, str)
        summary = await queue.get_task_summary(task_id)
        assert summary["error"] is None
        assert summary["retry"]["can_retry"] is False

        # 3. Manage Tasks
        await queue.pause_task(task_id)
        assert (await queue.get_task(task_id)).status.value == "paused"  # type: ignore[union-attr]
        await queue.resume_task(task_id)
        await work.started(task_id, times=2)
        await queue.cancel_task(task_id)
        assert (await queue.get_task(task_id)).status.value == "cancelled"  # type: ignore[union-attr]
        await queue.retry_task(task_id)
        work.release()
        done = await within(queue.wait_for(task_id))
        assert done.status.value == "completed"
        assert done.progress == 100

        # 4. Get Queue Statistics
        stats = await queue.get_queue_stats()
        assert stats["performance"]["success_rate"] == 100.0
        assert stats["performance"]["average_duration_seconds"] >= 0
        assert stats["recent_activity"]["last_hour"] == 1
    finally:
        await within(queue.close(grace_s=0))


async def test_a_failed_tasks_summary_explains_the_error(tmp_path: Path) -> None:
    async def denied(ctx: Any) -> dict[str, Any]:
        raise ExecutionError("unauthorized", code=ErrorCode.DOCKER_AUTHENTICATION_FAILED)

    async with TaskQueue(
        executors=dict.fromkeys(TaskType, denied), settings=make_settings(tmp_path)
    ) as queue:
        task_id = await queue.add_task(
            DockerTask(task_type=TaskType.PUSH, params={"image_name": "a/b"})
        )
        await within(queue.wait_for(task_id))
        summary = await queue.get_task_summary(task_id)
        assert summary["error"]["code"] == "DOCKER_AUTHENTICATION_FAILED"
        assert summary["error"]["suggestions"]
        assert summary["retry"]["can_retry"] is True


async def test_no_set_up_call_is_needed_and_the_data_dir_holds_the_database(
    tmp_path: Path,
) -> None:
    work = Work(block=False)
    queue = TaskQueue(executors=dict.fromkeys(TaskType, work), data_dir=tmp_path)
    try:
        task_id = await queue.add_task(
            DockerTask(task_type=TaskType.PULL, params={"image_name": "x"})
        )
        assert (await within(queue.wait_for(task_id))).status.value == "completed"
        assert queue.settings.data_dir == tmp_path
        assert (tmp_path / "ai-admin.db").is_file()
    finally:
        await within(queue.close())


async def test_async_with_shuts_the_queue_down_and_keeps_unfinished_work(tmp_path: Path) -> None:
    work = Work()  # never finishes
    settings = make_settings(tmp_path, shutdown_grace_s=0.01)
    async with TaskQueue(executors=dict.fromkeys(TaskType, work), settings=settings) as queue:
        task_id = await queue.add_task(DockerTask(task_type=TaskType.BUILD, params={"tag": "t"}))
        await work.started(task_id)
    assert work.cancelled == [task_id]

    later = Work(block=False)
    async with TaskQueue(executors=dict.fromkeys(TaskType, later), settings=settings) as queue:
        assert (await within(queue.wait_for(task_id))).status.value == "completed"
    assert later.starts == [task_id]


def test_the_module_exports_the_documented_names() -> None:
    from ai_admin import python_api

    assert sorted(python_api.__all__) == [
        "DockerTask",
        "Submission",
        "TaskPriority",
        "TaskQuery",
        "TaskQueue",
        "TaskStatus",
        "TaskType",
    ]
    for name in python_api.__all__:
        assert hasattr(python_api, name)


async def test_a_release_as_docs_orchestration_writes_it(tmp_path: Path) -> None:
    work = Work(block=False)
    settings = make_settings(tmp_path)
    async with TaskQueue(executors=dict.fromkeys(TaskType, work), settings=settings) as queue:
        build = DockerTask(
            task_type=TaskType.BUILD,
            params={"dockerfile": "FROM busybox\n", "tags": ["127.0.0.1:5000/team/app:1.4"]},
        )
        push = DockerTask(
            task_type=TaskType.PUSH,
            params={"image_name": "127.0.0.1:5000/team/app", "tag": "1.4"},
            depends_on=[build.id],
        )
        batch = await queue.submit_batch([build, push], name="release 1.4")
        assert (await within(queue.wait_for_batch(batch.batch_id))).state.value == "completed"
    assert work.starts == [build.id, push.id]
