"""systemd: the unit file shipped with the package, and ``sd_notify`` readiness.

`notify` sends a state line (``READY=1``, ``STOPPING=1``...) to the socket systemd
names in ``$NOTIFY_SOCKET`` (a ``Type=notify`` unit); without it, it does nothing.
`unit_text` is the shipped ``actors-node@.service`` with this installation's
``actors`` executable in its ``Exec`` lines.
"""

from __future__ import annotations

import logging
import os
import socket
from importlib.resources import files

__all__ = ["UNIT_NAME", "notify", "unit_text"]

logger = logging.getLogger(__name__)

UNIT_NAME = "actors-node@.service"
"""The name the shipped unit is installed under (a template: one instance per config)."""

_SHIPPED_EXECUTABLE = "/opt/actors/bin/actors"


def unit_text(executable: str | None = None) -> str:
    """The shipped unit, with `executable` (an absolute path) as the ``actors`` it runs."""
    text = files("actors").joinpath("deploy", UNIT_NAME).read_text(encoding="utf-8")
    if executable is not None:
        text = text.replace(_SHIPPED_EXECUTABLE, executable)
    return text


def notify(state: str) -> bool:
    """Tell systemd `state` (e.g. ``"READY=1"``); return whether there was anyone to tell."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        logger.warning("could not notify systemd of %s through %s", state, address, exc_info=True)
        return False
    return True
