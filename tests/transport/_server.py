"""A bridge in its own process: ``python -m tests.transport._server [options]``.

Prints the bound endpoint on one stdout line, then serves until stdin closes or
SIGTERM arrives.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

import pykka

import transport
from tests.transport._actors import Fields, start_actors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:*")
    parser.add_argument("--max-message-size", type=int, default=None)
    parser.add_argument(
        "--waiters",
        type=int,
        default=0,
        help="also serve this many Fields actors as wait0, wait1, ...",
    )
    parser.add_argument(
        "--curve-dir",
        type=Path,
        default=None,
        help="holds server.key_secret and an allowed/ directory of client keys",
    )
    options = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="server %(levelname)s %(name)s: %(message)s",
    )
    kwargs: dict[str, object] = {}
    if options.max_message_size:
        kwargs["max_message_size"] = options.max_message_size
    if options.curve_dir:
        kwargs["keypair"] = transport.load_keypair(options.curve_dir / "server.key_secret")
        kwargs["allowed_clients"] = options.curve_dir / "allowed"
    refs = start_actors()
    for i in range(options.waiters):
        refs[f"wait{i}"] = Fields.start()
    bridge = transport.Bridge(options.endpoint, **kwargs)  # type: ignore[arg-type]
    for name, ref in refs.items():
        bridge.expose(name, ref)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())

    def wait_for_eof() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    try:
        bridge.start()
        print(bridge.endpoint, flush=True)
        while not done.wait(1.0):
            pass
    finally:
        bridge.stop()
        pykka.ActorRegistry.stop_all(block=True, timeout=5)


if __name__ == "__main__":
    main()
