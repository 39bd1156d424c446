"""The one benchmark harness: child processes, timed loops, medians, targets, tables, JSON, plots.

A benchmark's ``main`` builds its command line with `parser` (its docstring,
``--json FILE``, ``--plot FILE.png``) and parses it with `Output.parse`. It
spawns its servers with `spawn` or `servers` (a module run as ``python -m``,
printing one line, its endpoint, then serving until its stdin closes: in the
server, `serve_until_stdin_closes` or `serve_exposed`; another revision's
runtime through `revision_tree`), runs measuring children with `run_module`,
and stops each child by its PID. It times its loops with `timed_calls`,
`interleaved`, `pipelined`, `in_rounds`, `rate` and `rate_of` (for asyncio,
`timed_awaits` and `pipelined_awaits`), reduces them with
`median_of`, `medians`, `pct` and `ratio`, and reports `Row`s (ours beside the
floor measured in the same run, with a `Target`) through `Output`: a rich
table, JSON in one schema (`SCHEMA`) for every benchmark, bars.

The noise-free side: per call, the system calls (``strace -f -c`` attached for
a window of calls: `strace_window`), voluntary and involuntary context
switches per thread (``/proc/PID/task/*/status``: `switches`) and
instructions (``callgrind``, zeroed and dumped around the window:
`callgrind_window`; or only between chosen functions' calls, per thread:
`marked_callgrind`, `read_dumps`, `spans`). A loaded machine moves latencies
by tens of percent and these counts by nothing: they are the primary evidence
(``bench.percall``, ``bench.critical``).

Run every benchmark as a module from the tree's root: ``python -m bench.NAME``.
"""

from __future__ import annotations

from bench._harness._counts import (
    callgrind_window,
    callgrind_wrapper,
    parse_strace_summary,
    strace_window,
    switch_delta,
    switches,
)
from bench._harness._plot import plot_rows, pyplot, require_matplotlib
from bench._harness._procs import (
    ROOT,
    Finished,
    Server,
    freeze_startup,
    revision_tree,
    rss_bytes,
    run_module,
    serve_exposed,
    serve_until_stdin_closes,
    servers,
    spawn,
    stop_process,
)
from bench._harness._report import (
    SCHEMA,
    Output,
    Row,
    Target,
    all_met,
    parser,
    print_table,
    read_json,
    rows_table,
    show,
    write_json,
)
from bench._harness._spans import (
    Dump,
    Mark,
    instrument,
    marked_callgrind,
    parse_dump,
    read_dumps,
    spans,
)
from bench._harness._timing import (
    in_rounds,
    interleaved,
    interleaved_blocks,
    median_of,
    medians,
    pct,
    pipelined,
    pipelined_awaits,
    rate,
    rate_of,
    ratio,
    timed_awaits,
    timed_calls,
)

__all__ = [
    "ROOT",
    "SCHEMA",
    "Dump",
    "Finished",
    "Mark",
    "Output",
    "Row",
    "Server",
    "Target",
    "all_met",
    "callgrind_window",
    "callgrind_wrapper",
    "freeze_startup",
    "in_rounds",
    "instrument",
    "interleaved",
    "interleaved_blocks",
    "marked_callgrind",
    "median_of",
    "medians",
    "parse_dump",
    "parse_strace_summary",
    "parser",
    "pct",
    "pipelined",
    "pipelined_awaits",
    "plot_rows",
    "print_table",
    "pyplot",
    "rate",
    "rate_of",
    "ratio",
    "read_dumps",
    "read_json",
    "require_matplotlib",
    "revision_tree",
    "rows_table",
    "rss_bytes",
    "run_module",
    "serve_exposed",
    "serve_until_stdin_closes",
    "servers",
    "show",
    "spans",
    "spawn",
    "stop_process",
    "strace_window",
    "switch_delta",
    "switches",
    "timed_awaits",
    "timed_calls",
    "write_json",
]
