"""The Docker executors, by task type, as the queue plugs them in."""

from __future__ import annotations

from functools import partial

from ai_admin.config import Settings
from ai_admin.docker.build import build
from ai_admin.docker.pull import pull
from ai_admin.docker.push import push
from ai_admin.queue.executor import ExecutorMap
from ai_admin.queue.models import TaskType


def docker_executors(settings: Settings) -> ExecutorMap:
    return {
        TaskType.BUILD: partial(build, settings=settings),
        TaskType.PUSH: partial(push, settings=settings),
        TaskType.PULL: partial(pull, settings=settings),
    }
