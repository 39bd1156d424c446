"""Faults between hosts: loss, partitions, kill -9 and a database outage, in namespaces.

A node process (one `Ledger` manager), a PostgreSQL server and a client process
each run in their own network namespace (see `_lab`). The client's calls and
the node's journal are checked for what the runtime promises whatever the
network does: every call ends (a value, an error or a timeout, never later than
its timeout), nothing runs twice, and what arrives from one sender arrives in
the order sent. Faults are applied when the client's own progress says so, not
after a guessed delay.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.faults._cluster import (
    ACTOR,
    DB_ATTEMPT,
    ENDPOINT,
    NODE_HOST,
    REPORT_INTERVAL,
    SERVICE_DOWN_TIME,
    Node,
)
from tests.faults._lab import Lab, Postgres, Process

CALL_TIMEOUT = 1.0
HEARTBEAT_WAIT = 1.0  # Service's default bound on a beat's hold of the mailbox
ENDS_WITHIN = CALL_TIMEOUT + 3.0  # get() returns by its timeout, plus a loaded machine's delays
SLACK = 1.5  # what a loaded 2-core machine adds to a bounded wait
FLOOD_SECONDS = 4.0
FLOOD_RSS_LIMIT_MIB = 50  # issue 13's target for a 10 s flood


_clients: list[Process] = []


def client(lab: Lab, *args: str) -> Process:
    """Start the client script in the client's namespace (killed after the test at the latest)."""
    process = Process(
        [*lab.prefix("client"), sys.executable, "-m", "tests.faults._client", *args]
    )
    _clients.append(process)
    return process


@pytest.fixture(autouse=True)
def _no_client_left() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().kill()


@dataclass
class Run:
    """The outcomes of one `calls` run of the client, by sender and seq."""

    outcomes: dict[str, dict[int, dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    def ended(self) -> int:
        return sum(len(by_seq) for by_seq in self.outcomes.values())

    def count(self, outcome: str) -> int:
        return sum(
            o["outcome"] == outcome for by_seq in self.outcomes.values() for o in by_seq.values()
        )


def run_calls(
    lab: Lab, node: Node, *, senders: int, count: int,
    on_pause: Callable[[int, Run], None] | None = None, pause_at: tuple[int, ...] = (),
    on_outcome: Callable[[Run], None] | None = None,
    extra: tuple[str, ...] = (), timeout: float = CALL_TIMEOUT,
) -> Run:
    """Run the client's calls.

    Before each seq in `pause_at` every sender stops and `on_pause(seq, run)` runs (to
    inject a fault at a known point); `on_outcome` sees the run after each outcome.
    """
    pauses = ("--pause-at", ",".join(map(str, pause_at))) if pause_at else ()
    process = client(
        lab, "calls", ENDPOINT, ACTOR, "--senders", str(senders), "--count", str(count),
        "--timeout", str(timeout), "--keys", str(node.keys), *pauses, *extra,
    )
    result = Run()
    done = 0
    try:
        while done < senders:
            line = process.line(timeout=timeout * 5 + 30)
            assert line is not None, "the client exited early:\n" + "".join(process.stderr)
            event = json.loads(line)
            if "done" in event:
                done += 1
                continue
            if "paused" in event:
                if on_pause is not None:
                    on_pause(event["paused"], result)
                process.send("go")
                continue
            by_seq = result.outcomes[event["sender"]]
            assert event["seq"] not in by_seq, f"two outcomes for one call: {event}"
            by_seq[event["seq"]] = event
            if on_outcome is not None:
                on_outcome(result)
        assert process.proc.wait(timeout=30) == 0, "".join(process.stderr)
    finally:
        process.kill()
    return result


def summary(run: Run) -> dict[str, list[tuple[int, str]]]:
    """Each sender's outcomes in order, runs of the same outcome collapsed (for messages)."""
    out: dict[str, list[tuple[int, str]]] = {}
    for sender, by_seq in run.outcomes.items():
        runs: list[tuple[int, str]] = []
        for seq in sorted(by_seq):
            outcome = by_seq[seq]["outcome"]
            if runs and runs[-1][1] == outcome:
                continue
            runs.append((seq, outcome))
        out[sender] = runs
    return out


def check_run(run: Run, journal: list[tuple[str, int]], *, senders: int, count: int) -> None:
    """Every call ended in time; the journal has no duplicate and is in order per sender."""
    assert set(run.outcomes) == {f"s{i}" for i in range(senders)}
    for sender, by_seq in run.outcomes.items():
        assert sorted(by_seq) == list(range(count)), f"{sender}: calls without an outcome"
        for event in by_seq.values():
            outcome = event["outcome"]
            assert outcome in ("value", "timeout", "sent") or outcome.startswith("error:"), event
            assert event["elapsed"] <= ENDS_WITHIN, f"a call ended late: {event}"
    arrived: dict[str, list[int]] = defaultdict(list)
    for sender, seq in journal:
        arrived[sender].append(seq)
    for sender, seqs in arrived.items():
        assert len(seqs) == len(set(seqs)), f"{sender}: executed twice: {seqs}"
        assert seqs == sorted(seqs), f"{sender}: out of order: {seqs}"
        assert set(seqs) <= set(range(count))
    for sender, by_seq in run.outcomes.items():
        answered = {seq for seq, event in by_seq.items() if event["outcome"] == "value"}
        assert answered <= set(arrived[sender]), f"{sender}: answered but not journaled"


def fresh_journal(node: Node) -> None:
    node.journal.write_text("")


class Watch:
    """A client that polls the services table (from the client's namespace) for a state."""

    def __init__(self, lab: Lab, pg: Postgres, want: str, within: float) -> None:
        self.want, self.within = want, within
        self.process = client(
            lab, "status", pg.url, NODE_HOST, "ledger", "--down-time", str(SERVICE_DOWN_TIME),
            "--want", want, "--within", str(within),
        )
        self.first = self._event()

    def _event(self) -> dict[str, Any]:
        line = self.process.line(timeout=self.within + 30)
        assert line is not None, "".join(self.process.stderr)
        event: dict[str, Any] = json.loads(line)
        return event

    def already(self) -> bool:
        """Whether the service read as wanted at the first poll."""
        return "reached" in self.first

    def reached_at(self) -> float:
        """Wait until the service reads as wanted; return that moment (time.time())."""
        try:
            event = self.first if self.already() else self._event()
            assert event.get("reached"), f"the service did not turn {self.want} in {self.within}s"
            return float(event["at"])
        finally:
            self.process.kill()


def wait_status(lab: Lab, pg: Postgres, want: str, within: float) -> float:
    """Wait until the node's service reads `want`; return when."""
    return Watch(lab, pg, want, within).reached_at()


def test_loss_then_partition_every_message_ends_once_and_in_order(lab: Lab, node: Node) -> None:
    senders, count = 2, 60
    fresh_journal(node)
    phase: dict[str, Any] = {"name": "clean", "timeouts": 0}

    def at(seq: int, run: Run) -> None:
        if seq == 10:
            lab.isolate("node", loss=0.2)
            phase["name"] = "loss"
        elif seq == 25:
            lab.heal()
            lab.isolate("node")
            phase.update(name="partition", timeouts=run.count("timeout"))

    def heal_after_timeouts(run: Run) -> None:  # each timeout takes CALL_TIMEOUT: time to act
        if phase["name"] == "partition" and run.count("timeout") >= phase["timeouts"] + 4:
            lab.heal()
            phase["name"] = "healed"

    run = run_calls(lab, node, senders=senders, count=count, pause_at=(10, 25), on_pause=at,
                    on_outcome=heal_after_timeouts, extra=("--mixed",))  # casts and calls
    assert phase["name"] == "healed", (phase, summary(run))
    assert run.count("timeout") >= 4  # the partition was felt
    for sender, by_seq in run.outcomes.items():  # the last calls got through: all arrived
        assert by_seq[count - 1]["outcome"] == "value", (sender, summary(run))
    check_run(run, node.journal_lines(), senders=senders, count=count)


def test_casts_across_a_partition_arrive_at_most_once_in_order(lab: Lab, node: Node) -> None:
    count = 300
    fresh_journal(node)

    def at(seq: int, run: Run) -> None:
        if seq == 100:
            lab.isolate("node")
        elif seq == 200:
            lab.heal()

    run = run_calls(lab, node, senders=1, count=count, pause_at=(100, 200), on_pause=at,
                    extra=("--casts",))
    marker = run_calls(lab, node, senders=1, count=1, extra=("--prefix", "m"))
    assert marker.count("value") == 1  # a call after the casts: the node is reachable again
    check_run(run, [e for e in node.journal_lines() if e[0] == "s0"], senders=1, count=count)


def test_kill_9_mid_stream_then_restart(lab: Lab, node: Node) -> None:
    count = 40
    fresh_journal(node)

    def fault(seq: int, run: Run) -> None:  # the client waits at each checkpoint
        if seq == 15:
            node.kill()
        else:  # same endpoint: the client's connection reconnects by itself
            node.start()  # returns once the node printed ready (it is discoverable)

    run = run_calls(lab, node, senders=1, count=count, pause_at=(15, 20), on_pause=fault)
    assert run.count("value") < count  # the kill was felt (calls 15..19 found no node)
    assert run.outcomes["s0"][count - 1]["outcome"] == "value", summary(run)
    check_run(run, node.journal_lines(), senders=1, count=count)


def test_partitioned_node_turns_down_then_up(lab: Lab, pg: Postgres, node: Node) -> None:
    wait_status(lab, pg, "up", within=10)
    went_away = node.log.log_count("model server went away")
    recovered = node.log.log_count("Recovered model server connection")
    down = Watch(lab, pg, "down", within=SERVICE_DOWN_TIME + 10)  # polling before the cut
    assert not down.already()
    cut_at = time.time()
    lab.isolate("node")
    took = down.reached_at() - cut_at
    print(f"partitioned: down after {took:.2f}s (service_down_time {SERVICE_DOWN_TIME}s)")
    assert took <= SERVICE_DOWN_TIME + SLACK
    up = Watch(lab, pg, "up", within=REPORT_INTERVAL + DB_ATTEMPT + 10)
    assert not up.already()
    healed_at = time.time()
    lab.heal()
    # the next beat after healing, or the one after an attempt that was in flight
    took = up.reached_at() - healed_at
    print(f"healed: up after {took:.2f}s (report_interval {REPORT_INTERVAL}s)")
    assert took <= REPORT_INTERVAL + DB_ATTEMPT + SLACK
    node.log.wait_for_log_count("Recovered model server connection", recovered + 1, timeout=10)
    assert node.log.log_count("model server went away") == went_away + 1
    assert node.log.log_count("Recovered model server connection") == recovered + 1


def test_kill_9_of_a_client_mid_call_leaves_the_node_serving(lab: Lab, node: Node) -> None:
    fresh_journal(node)
    process = client(lab, "calls", ENDPOINT, ACTOR, "--count", "100000", "--timeout", "5",
                     "--keys", str(node.keys))
    for _ in range(20):  # it is calling
        line = process.line(timeout=30)
        assert line is not None
        assert json.loads(line)["outcome"] == "value", line
    process.kill()  # SIGKILL, most likely with a call on the wire
    assert node.log.proc.poll() is None
    after = run_calls(lab, node, senders=1, count=5, extra=("--prefix", "after"))
    assert after.count("value") == 5
    arrived = [seq for sender, seq in node.journal_lines() if sender == "s0"]
    assert arrived == list(range(len(arrived)))  # the dead client's calls: once each, in order


@pytest.mark.parametrize("outage", ["stopped", "unreachable"])
def test_database_outage_node_keeps_serving(
    lab: Lab, pg: Postgres, node: Node, outage: str
) -> None:
    """The database stops (connections refused) or drops off the node's network (silence)."""
    wait_status(lab, pg, "up", within=10)
    went_away = node.log.log_count("model server went away")
    recovered = node.log.log_count("Recovered model server connection")
    if outage == "stopped":
        pg.stop()
    else:
        lab.cut("node", "db")
    try:
        node.log.wait_for_log_count("model server went away", went_away + 1,
                                    timeout=REPORT_INTERVAL + DB_ATTEMPT + 10)
        fresh_journal(node)
        # calls that need no database go on, through several report intervals of outage
        # the mailbox waits at most heartbeat_wait (1 s) for a beat's write; a call's
        # timeout above that bound, plus a loaded machine's slack, must never pass
        run = run_calls(lab, node, senders=1, count=40, extra=("--interval", "0.05"),
                        timeout=HEARTBEAT_WAIT + 2.0)  # fmt: skip
        assert run.count("value") == 40, summary(run)
        assert max(e["elapsed"] for e in run.outcomes["s0"].values()) < HEARTBEAT_WAIT + 1.0
        assert node.log.log_count("model server went away") == went_away + 1  # logged once
    except BaseException:
        pg.start() if outage == "stopped" else lab.heal()
        raise
    up = Watch(lab, pg, "up", within=REPORT_INTERVAL + DB_ATTEMPT + 10)  # polling before
    assert not up.already()
    if outage == "stopped":
        pg.start()
    else:
        lab.heal()
    back_at = time.time()
    took = up.reached_at() - back_at
    print(f"database {outage}, back: up after {took:.2f}s (report_interval {REPORT_INTERVAL}s)")
    assert took <= REPORT_INTERVAL + DB_ATTEMPT + SLACK
    node.log.wait_for_log_count("Recovered model server connection", recovered + 1, timeout=10)
    assert node.log.log_count("Recovered model server connection") == recovered + 1


def test_delayed_link_calls_still_answer(lab: Lab, node: Node) -> None:
    if not lab.has_netem:
        pytest.skip("this kernel has no tc netem (sch_netem): the delay fault cannot be made")
    lab.delay("node", 100)
    fresh_journal(node)
    run = run_calls(lab, node, senders=1, count=10)
    assert run.count("value") == 10
    assert min(e["elapsed"] for e in run.outcomes["s0"].values()) >= 0.1


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_memory_stays_bounded_under_a_cast_flood(lab: Lab, node: Node) -> None:
    """A client casts 1 KiB messages at a manager that takes 1 ms each, as fast as it can."""
    pid = node.log.pid
    before = rss_mib(pid)
    process = client(lab, "flood", ENDPOINT, ACTOR, "--seconds", str(FLOOD_SECONDS),
                     "--keys", str(node.keys))
    peak = before
    counts: dict[str, int] = {}
    try:
        assert json.loads(process.line(timeout=30) or "{}") == {"flooding": True}
        while True:  # sample the node's memory until the flood reports
            try:
                line = process.line(timeout=0.2)
            except TimeoutError:
                peak = max(peak, rss_mib(pid))
                continue
            assert line is not None, "".join(process.stderr)
            counts = json.loads(line)["counts"]
            break
    finally:
        process.kill()
    peak = max(peak, rss_mib(pid))
    print(f"flood: {counts}; node RSS {before:.0f} MiB before, {peak:.0f} MiB at most")
    assert counts.get("sent", 0) > 0
    assert peak - before < FLOOD_RSS_LIMIT_MIB, (counts, before, peak)
