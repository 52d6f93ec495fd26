"""Pending tasks in run order: priority first, then ``seq`` (FIFO), with cheap positions.

At most ``max_queue_size`` tasks wait, so sorted lists per priority with ``bisect`` keep claim,
removal and position lookups simple and fast enough (logarithmic search, short memmoves).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from ai_admin.queue.models import TaskPriority


class ReadyQueue:
    def __init__(self) -> None:
        self._seqs: dict[TaskPriority, list[int]] = {p: [] for p in TaskPriority}
        self._ids: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, seq: int) -> bool:
        return seq in self._ids

    def add(self, priority: TaskPriority, seq: int, task_id: str) -> None:
        if seq in self._ids:
            raise ValueError(f"seq {seq} is already queued")
        bisect.insort(self._seqs[priority], seq)
        self._ids[seq] = task_id

    def remove(self, priority: TaskPriority, seq: int) -> bool:
        seqs = self._seqs[priority]
        i = bisect.bisect_left(seqs, seq)
        if i == len(seqs) or seqs[i] != seq:
            return False
        del seqs[i]
        del self._ids[seq]
        return True

    def pop(self) -> tuple[int, str] | None:
        """The seq and id of the task that runs next, removed from the queue."""
        for priority in TaskPriority:
            seqs = self._seqs[priority]
            if seqs:
                seq = seqs.pop(0)
                return seq, self._ids.pop(seq)
        return None

    def position(self, priority: TaskPriority, seq: int) -> int | None:
        """1 for the task that runs next; None if the task is not queued."""
        if seq not in self._ids:
            return None
        ahead = sum(len(self._seqs[p]) for p in TaskPriority if p < priority)
        return ahead + bisect.bisect_left(self._seqs[priority], seq) + 1

    def __iter__(self) -> Iterator[str]:
        """Task ids in run order."""
        for priority in TaskPriority:
            for seq in self._seqs[priority]:
                yield self._ids[seq]
