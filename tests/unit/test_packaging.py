"""What the package says about itself: one version, the licence it names, bounded requirements."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

import ai_admin

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# Specifier operators that put a ceiling on what may be installed.
_BOUNDED = {"<", "<=", "==", "===", "~="}


def test_the_version_is_written_once_in_the_package() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    source = PYPROJECT["tool"]["hatch"]["version"]["path"]
    assert source == "ai_admin/__init__.py"
    written = re.findall(r'^__version__ = "([^"]+)"$', (ROOT / source).read_text(), re.MULTILINE)
    assert written == [ai_admin.__version__]
    assert re.fullmatch(r"\d+\.\d+\.\d+", ai_admin.__version__)


def test_the_licence_file_is_the_mit_licence_the_metadata_names() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the ai-admin authors\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
    # A licence expression replaces the licence classifiers (PEP 639): none may contradict it.
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]


def test_every_requirement_has_a_ceiling() -> None:
    """A new major release (or a new linter release, with new verdicts) of anything must not
    reach an install unasked; the test extra holds the lint and type-check tools."""
    project = PYPROJECT["project"]
    requirements = [*project["dependencies"], *PYPROJECT["build-system"]["requires"]]
    for extra in project["optional-dependencies"].values():
        requirements += extra
    unbounded = [
        text
        for text in requirements
        if not any(spec.operator in _BOUNDED for spec in Requirement(text).specifier)
    ]
    assert unbounded == []
    tools = {Requirement(t).name for t in project["optional-dependencies"]["test"]}
    assert {"ruff", "mypy", "types-requests"} <= tools
