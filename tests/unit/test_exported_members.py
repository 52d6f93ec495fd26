"""The package root's public names are exactly the documented Python API (as httpx tests its
own ``__all__``), and handing them out does not load the queue with every base module."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ai_admin
from ai_admin import python_api


def test_the_package_exports_exactly_the_python_api() -> None:
    assert ai_admin.__all__ == [
        "DockerTask",
        "Submission",
        "TaskPriority",
        "TaskQuery",
        "TaskQueue",
        "TaskStatus",
        "TaskType",
        "__version__",
    ]
    assert sorted(ai_admin.__all__) == sorted([*python_api.__all__, "__version__"])
    for name in python_api.__all__:
        assert getattr(ai_admin, name) is getattr(python_api, name)
    star: dict[str, object] = {}
    exec("from ai_admin import *", star)  # noqa: S102 - what a star import really gives
    assert sorted(set(star) - {"__builtins__"}) == sorted(ai_admin.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        ai_admin.Nothing  # type: ignore[attr-defined]  # noqa: B018


def test_importing_the_package_or_a_base_module_does_not_load_the_queue() -> None:
    code = (
        "import sys, ai_admin, ai_admin.config, ai_admin.errors; "
        "print(sorted(m for m in sys.modules if m.startswith('ai_admin.queue')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
    code = "from ai_admin import TaskQueue; print(TaskQueue.__module__)"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "ai_admin.python_api"
    )
