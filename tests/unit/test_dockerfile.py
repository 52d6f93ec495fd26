"""The image's build context is an allow-list that holds exactly what the Dockerfile copies."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _copied() -> set[str]:
    sources: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources.update(w.rstrip("/") for w in words[1:-1])
    return sources


def test_the_build_context_holds_only_what_the_image_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"  # everything out, then each needed path back in
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert (
        allowed
        == _copied()
        == {
            "pyproject.toml",
            "README.md",
            "LICENSE",
            "ai_admin",
            "config/ai-admin.toml",
        }
    )
    for path in allowed:
        assert (ROOT / path).exists(), path


def test_the_base_image_is_a_build_argument() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.MULTILINE)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.MULTILINE)
