"""Property: a manager applies each sender's messages in send order, loses none, overlaps none."""

from __future__ import annotations

import threading
import time
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actors import Manager

OPS = st.sampled_from(["call", "call_later", "cast"])


class Ledger(Manager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log: list[tuple[int, int]] = []
        self.per_sender: dict[int, int] = {}
        self.active = 0
        self.overlaps = 0
        self.intervals: list[tuple[float, float]] = []

    def apply(self, sender: int, seq: int, spin: int = 0) -> int:
        self.active += 1
        if self.active != 1:
            self.overlaps += 1
        start = time.perf_counter()
        for _ in range(spin):  # a little work, so overlaps would have room to happen
            pass
        self.log.append((sender, seq))
        self.per_sender[sender] = self.per_sender.get(sender, 0) + 1
        applied = self.per_sender[sender]
        self.intervals.append((start, time.perf_counter()))
        self.active -= 1
        return applied

    def snapshot(self) -> tuple[list[tuple[int, int]], int, list[tuple[float, float]]]:
        return list(self.log), self.overlaps, list(self.intervals)


@settings(max_examples=40)
@given(
    plans=st.lists(st.lists(OPS, min_size=1, max_size=25), min_size=1, max_size=4),
    spin=st.integers(min_value=0, max_value=200),
)
def test_each_senders_messages_apply_in_order(plans: list[list[str]], spin: int) -> None:
    ref = Ledger.start(host="h")
    try:
        barrier = threading.Barrier(len(plans))
        problems: list[str] = []

        def send(sender: int, ops: list[str]) -> None:
            proxy = ref.proxy()
            barrier.wait(timeout=10)
            later: list[tuple[int, Any]] = []
            for seq, op in enumerate(ops):
                if op == "cast":
                    proxy.apply.defer(sender, seq, spin)
                    continue
                future = proxy.apply(sender, seq, spin)
                if op == "call":
                    later.append((seq, future.get(timeout=10)))
                else:
                    later.append((seq, future))
            for seq, result in later:
                applied = result if isinstance(result, int) else result.get(timeout=10)
                # everything this sender sent before the call was applied when it returned
                if applied != seq + 1:
                    problems.append(f"sender {sender} call {seq} saw {applied} applied")

        threads = [
            threading.Thread(target=send, args=(i, ops), name=f"sender-{i}")
            for i, ops in enumerate(plans)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
            assert not thread.is_alive()
        assert problems == []
        log, overlaps, intervals = ref.proxy().snapshot().get(timeout=10)
        for sender, ops in enumerate(plans):
            assert [seq for s, seq in log if s == sender] == list(range(len(ops)))
        assert len(log) == sum(map(len, plans))  # none lost, none twice
        assert overlaps == 0
        for (_, end), (start, _) in pairwise(sorted(intervals)):
            assert end <= start
    finally:
        ref.stop(timeout=10)
