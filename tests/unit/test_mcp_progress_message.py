"""An MCP progress notification's message ends with the rate and time left, where known."""

from __future__ import annotations

from ai_admin.mcp.calls import _numbers
from ai_admin.queue.models import ProgressDetail


def test_the_message_tail_gives_the_rate_and_time_left_only_when_known() -> None:
    assert _numbers(None) == ""
    assert _numbers(ProgressDetail(phase="downloading", bytes_done=0, bytes_total=9)) == ""
    moving = ProgressDetail(phase="downloading", bytes_done=1, rate_bps=4_100_000.0)
    assert _numbers(moving) == " [4.1 MB/s]"  # no total: no time left
    timed = ProgressDetail(phase="uploading", bytes_done=1, rate_bps=2_000_000.0, eta_s=3.6)
    assert _numbers(timed) == " [2.0 MB/s, 4 s left]"
