"""The ready queue: run order is priority then seq, positions count from 1, removal is exact."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_admin.queue.models import TaskPriority
from ai_admin.queue.ready import ReadyQueue

P = TaskPriority


def test_pop_follows_priority_then_seq() -> None:
    ready = ReadyQueue()
    for seq, priority in [(1, P.LOW), (2, P.NORMAL), (3, P.CRITICAL), (4, P.NORMAL), (5, P.HIGH)]:
        ready.add(priority, seq, f"t{seq}")
    assert list(ready) == ["t3", "t5", "t2", "t4", "t1"]
    assert [ready.pop() for _ in range(6)] == [
        (3, "t3"),
        (5, "t5"),
        (2, "t2"),
        (4, "t4"),
        (1, "t1"),
        None,
    ]
    assert len(ready) == 0


def test_positions_count_from_one_and_shift_on_removal() -> None:
    ready = ReadyQueue()
    ready.add(P.NORMAL, 1, "a")
    ready.add(P.NORMAL, 2, "b")
    ready.add(P.HIGH, 3, "c")
    assert [ready.position(P.HIGH, 3), ready.position(P.NORMAL, 1)] == [1, 2]
    assert ready.position(P.NORMAL, 2) == 3
    assert ready.remove(P.NORMAL, 1)
    assert ready.position(P.NORMAL, 2) == 2
    assert ready.position(P.NORMAL, 1) is None
    assert not ready.remove(P.NORMAL, 1)  # removing twice is a no-op
    assert not ready.remove(P.LOW, 2)  # wrong priority: not found, nothing removed
    assert 2 in ready
    assert 1 not in ready


def test_a_seq_can_only_be_queued_once() -> None:
    ready = ReadyQueue()
    ready.add(P.NORMAL, 1, "a")
    with pytest.raises(ValueError, match="already queued"):
        ready.add(P.LOW, 1, "b")


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(list(TaskPriority))),
        st.tuples(st.just("remove"), st.integers(0, 60)),
        st.tuples(st.just("pop"), st.none()),
    ),
    max_size=80,
)


@settings(deadline=None)  # a loaded CI machine must not fail an example for slowness
@given(ops)
def test_matches_a_sorted_list_model(operations: list[tuple[str, object]]) -> None:
    ready = ReadyQueue()
    model: dict[int, TaskPriority] = {}  # seq -> priority of what is queued
    next_seq = 0
    for op, arg in operations:
        if op == "add":
            assert isinstance(arg, TaskPriority)
            next_seq += 1
            ready.add(arg, next_seq, f"t{next_seq}")
            model[next_seq] = arg
        elif op == "remove":
            assert isinstance(arg, int)
            priority = model.get(arg, P.NORMAL)
            assert ready.remove(priority, arg) == (arg in model)
            model.pop(arg, None)
        else:
            expected = min(model, key=lambda s: (model[s], s)) if model else None
            popped = ready.pop()
            assert popped == ((expected, f"t{expected}") if expected is not None else None)
            if expected is not None:
                del model[expected]
        order = sorted(model, key=lambda s: (model[s], s))
        assert list(ready) == [f"t{s}" for s in order]
        assert len(ready) == len(model)
        for position, seq in enumerate(order, start=1):
            assert ready.position(model[seq], seq) == position
