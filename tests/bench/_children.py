"""Child processes for the harness tests: ``python -m tests.bench._children ROLE``.

- ``echo``: print ``ready``, then answer each stdin line with ``got LINE``; leave at EOF.
- ``silent``: leave with status 3, printing nothing.
- ``stubborn``: print ``ready``, ignore SIGTERM and stdin's end; wait forever.
- ``group``: start a grandchild that waits forever, print its PID, wait forever.
- ``env``: print where ``actors`` would be imported from and ``$BENCH_TEST``; wait for EOF.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading


def main(role: str) -> None:
    if role == "echo":
        print("ready", flush=True)
        for line in sys.stdin:
            print(f"got {line.strip()}", flush=True)
    elif role == "silent":
        raise SystemExit(3)
    elif role == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        threading.Event().wait()
    elif role == "group":
        grandchild = subprocess.Popen(
            [sys.executable, "-c", "import threading; threading.Event().wait()"]
        )
        print(grandchild.pid, flush=True)
        threading.Event().wait()
    elif role == "env":
        spec = importlib.util.find_spec("actors")  # where, without importing it
        origin = os.path.dirname(spec.origin or "") if spec else ""
        print(origin, os.environ.get("BENCH_TEST", ""), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1])
