"""Deadlines across a partition: a call whose caller timed out does not run after healing.

The client's requests carry their time-to-live and the client's send time; the
node's bridge sees how late each one arrives compared with that connection's
fastest and drops those whose caller has already given up (docs/protocol.rst,
"Deadlines"). Before, every call that timed out during a partition still ran
once the partition healed, so a caller that retried got its operation done twice.
"""

from __future__ import annotations

from typing import Any

from tests.faults._cluster import Node
from tests.faults._lab import Lab
from tests.faults.test_faults import Run, check_run, fresh_journal, run_calls, summary


def test_calls_that_timed_out_in_a_partition_do_not_run_after_it_heals(
    lab: Lab, node: Node
) -> None:
    count = 30
    fresh_journal(node)
    phase: dict[str, Any] = {"name": "clean", "timeouts": 0}

    def at(seq: int, run: Run) -> None:  # calls 0..9 arrived in time: the bridge's basis
        lab.isolate("node")
        phase.update(name="partition", timeouts=run.count("timeout"))

    def heal_after_timeouts(run: Run) -> None:
        if phase["name"] == "partition" and run.count("timeout") >= phase["timeouts"] + 3:
            lab.heal()
            phase["name"] = "healed"

    run = run_calls(lab, node, senders=1, count=count, pause_at=(10,), on_pause=at,
                    on_outcome=heal_after_timeouts)  # fmt: skip
    assert phase["name"] == "healed", (phase, summary(run))
    journal = node.journal_lines()
    check_run(run, journal, senders=1, count=count)
    timed_out = {seq for seq, event in run.outcomes["s0"].items() if event["outcome"] == "timeout"}
    ran = {seq for sender, seq in journal if sender == "s0"}
    assert len(timed_out) >= 3, summary(run)  # the partition was felt
    assert run.outcomes["s0"][count - 1]["outcome"] == "value", summary(run)  # and healed
    assert not timed_out & ran, f"calls ran after their caller timed out: {timed_out & ran}"
