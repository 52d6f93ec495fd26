"""Numbers as an operator reads them: bytes, rates, durations, times of day."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["clock", "duration", "progress_numbers", "size", "when"]

_UNITS = ("B", "kB", "MB", "GB", "TB")


def size(n: float | None) -> str:
    """``12.3 MB`` (decimal units, as Docker prints them); empty when unknown."""
    if n is None:
        return ""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1000 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    """``4.2 s``, ``3 min 05 s``, ``2 h 07 min``; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def clock(at: float | None) -> str:
    """Local ``HH:MM:SS`` of a Unix time; empty when unknown."""
    return time.strftime("%H:%M:%S", time.localtime(at)) if at else ""


def when(at: float | None) -> str:
    """Local ``YYYY-MM-DD HH:MM:SS`` of a Unix time; empty when unknown."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else ""


def progress_numbers(detail: dict[str, Any] | None) -> str:
    """``12.0 MB / 24.0 MB  3.1 MB/s  ETA 4.0 s``, or ``step 3/7``, from a task's
    ``progress_detail``; empty without numbers."""
    if not detail:
        return ""
    parts = []
    if detail.get("bytes_done") is not None:
        total = detail.get("bytes_total")
        done = size(detail["bytes_done"])
        parts.append(f"{done} / {size(total)}" if total else done)
    if detail.get("rate_bps"):
        parts.append(f"{size(detail['rate_bps'])}/s")
    if detail.get("eta_s") is not None:
        parts.append(f"ETA {duration(detail['eta_s'])}")
    if detail.get("step") is not None:
        parts.append(f"step {detail['step']}/{detail.get('steps_total') or '?'}")
    return "  ".join(parts)
