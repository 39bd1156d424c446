"""Instructions between marks: callgrind dumps at chosen functions, one file per thread.

A process run under `marked_callgrind` counts nothing until
``callgrind_control -i on`` (`instrument`); from then on callgrind writes a
dump just after each ``after`` function returns and just before each
``before`` function is called, each holding the instructions its thread ran
since that thread's previous dump. `read_dumps` reads them back in order, per
thread; `spans` picks the stretches between two marks (say, from a receive's
return to the next send's call: ``Mark("after", "zmq_msg_recv")`` to
``Mark("before", "zmq_msg_send")``).
"""

from __future__ import annotations

import itertools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class Mark:
    """A dump point: just ``after`` `function` returns, or just ``before`` it is called."""

    when: Literal["after", "before"]
    function: str
    """A C function's name as callgrind knows it (``zmq_msg_send``, ``select_poll_poll``)."""

    @property
    def option(self) -> str:
        """The valgrind option that sets it."""
        return f"--dump-{self.when}={self.function}"


@dataclass(frozen=True)
class Dump:
    """One thread's part of one callgrind dump."""

    part: int
    """The dump's sequence number (the process's)."""
    thread: int
    mark: Mark | None
    """The mark that triggered it (None: the program's end, or callgrind_control)."""
    instructions: int
    """Instructions the thread ran since its previous dump."""


def marked_callgrind(out: str, marks: Sequence[Mark]) -> list[str]:
    """The command prefix: callgrind, instrumentation off at start, a dump at each of `marks`."""
    return [
        "valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={out}",
        "--dump-instr=no", "--instr-atstart=no", "--separate-threads=yes",
        *(mark.option for mark in marks),
    ]  # fmt: skip


def instrument(pid: int, *, on: bool) -> None:
    """Turn counting on or off in `pid` (running under `marked_callgrind`)."""
    state = "on" if on else "off"
    subprocess.run(["callgrind_control", "-i", state, str(pid)], check=True, capture_output=True)


_HEADER = re.compile(
    r"^(part|thread|summary|totals): (\d+)$|^desc: Trigger: --dump-(after|before)=(\S+)$"
)


def parse_dump(text: str) -> Dump:
    """One dump file's part, thread, trigger and instructions (its header).

    Raises:
        ValueError: `text` is not a callgrind dump (no part or no instructions).
    """
    fields: dict[str, int] = {}
    mark = None
    for line in text.splitlines():
        if line.startswith(("fl=", "fn=", "ob=")):  # the header is over
            break
        match = _HEADER.match(line)
        if match is None:
            continue
        if match[1]:
            fields.setdefault(match[1], int(match[2]))
        else:
            mark = Mark(match[3], match[4])  # type: ignore[arg-type]
    instructions = fields.get("summary", fields.get("totals"))
    if "part" not in fields or instructions is None:
        raise ValueError("not a callgrind dump (no part or no summary line)")
    return Dump(fields["part"], fields.get("thread", 1), mark, instructions)


def read_dumps(out: str) -> dict[int, list[Dump]]:
    """Every dump written for `out` (``out.PART-THREAD``), per thread, in order."""
    path = Path(out)
    threads: dict[int, list[Dump]] = {}
    for file in path.parent.glob(path.name + ".*"):
        dump = parse_dump(file.read_text(errors="replace"))
        threads.setdefault(dump.thread, []).append(dump)
    for dumps in threads.values():
        dumps.sort(key=lambda dump: dump.part)
    return threads


def spans(dumps: Sequence[Dump], start: Mark, end: Mark) -> list[int]:
    """The instructions of each stretch that begins at `start` and ends at `end`, no mark between.

    `dumps` are one thread's, in order (from `read_dumps`).
    """
    return [
        dump.instructions
        for before, dump in itertools.pairwise(dumps)
        if dump.mark == end and before.mark == start
    ]
