"""Leak checks: what a test started and did not stop (actors, threads, sockets, files).

A `LeakCheck` takes a snapshot of the process when it is made: the running
pykka actors, the Python threads, the open ZeroMQ sockets and (on Linux) the
open file descriptors. `check` compares the process with that snapshot and
raises `LeakError` naming everything that is new and still there.

Stopping is asynchronous (an actor's thread ends just after its stop future
resolves, ZeroMQ closes a socket's descriptors in its own reaper thread), so
`check` first gives what is new a bounded time to go away: it joins new
threads, then re-reads the sockets and descriptors until they are gone or the
time is up.

Example:
    >>> import threading
    >>> check = LeakCheck(timeout=0.2)
    >>> stop = threading.Event()
    >>> worker = threading.Thread(target=stop.wait, name="forgotten-worker")
    >>> worker.start()
    >>> try:
    ...     check.check()
    ... except LeakError as exc:
    ...     print(exc.leaks)
    ["thread 'forgotten-worker'"]
    >>> stop.set(); worker.join()
"""

from __future__ import annotations

import gc
import inspect
import ipaddress
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pykka
import zmq

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["LeakCheck", "LeakError"]

_FD_DIR = "/proc/self/fd"
_POLL = 0.02  # seconds between two looks at sockets and descriptors while they close
_warm_lock = threading.Lock()
_pause = threading.Event()  # never set: waiting on it is a bounded pause
_warmed = False


class LeakError(AssertionError):
    """Resources a test made are still there after it ended.

    Attributes:
        leaks: one readable line per leaked resource ("actor ...", "thread ...",
            "zmq socket ...", "fd N: ...").
    """

    def __init__(self, leaks: list[str], timeout: float) -> None:
        self.leaks = leaks
        lines = "\n".join(f"  {leak}" for leak in leaks)
        super().__init__(
            f"{len(leaks)} resource(s) leaked (still there after waiting {timeout:g} s "
            f"for them to stop):\n{lines}"
        )


@dataclass
class _Snapshot:
    actors: set[str]
    threads: set[threading.Thread]
    sockets: weakref.WeakSet[zmq.Socket[Any]]
    fds: dict[int, str] = field(default_factory=dict)


class LeakCheck:
    """A snapshot of the process's actors, threads, sockets and descriptors.

    Args:
        timeout: how long `check` lets new things finish stopping, in seconds.
        ignore_threads: names of threads that are never leaks (exact names).
    """

    def __init__(self, *, timeout: float = 5.0, ignore_threads: Iterable[str] = ()) -> None:
        _warm_zmq()
        self.timeout = timeout
        self.ignore_threads = frozenset(ignore_threads)
        self._before = _Snapshot(
            actors={ref.actor_urn for ref in pykka.ActorRegistry.get_all()},
            threads=set(threading.enumerate()),
            sockets=weakref.WeakSet(_open_sockets()),
            fds=_open_fds(),
        )

    def leaks(self) -> list[str]:
        """Wait up to `timeout` for new things to go away; describe those that did not."""
        deadline = time.monotonic() + self.timeout
        actors = self._new_actors()
        threads = self._new_threads()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        threads = [t for t in threads if t.is_alive()]
        fds: dict[int, str] = {}
        tracks_fds = _fd_table_available()
        while tracks_fds:
            fds = self._new_fds()
            if not fds or time.monotonic() >= deadline:
                break
            _pause.wait(_POLL)  # ZeroMQ closes descriptors in its reaper thread: re-read
        # An open ZeroMQ socket always holds a descriptor (its mailbox), so where the
        # descriptor table is readable the (slower) search for sockets is needed only
        # when some descriptor is left.
        sockets = self._new_sockets() if fds or not tracks_fds else []
        found = sorted(
            f"actor {ref.actor_class.__name__} ({ref.actor_urn})"
            for ref in actors
            if ref.is_alive()
        )
        found += sorted(f"thread {t.name!r}{' (daemon)' if t.daemon else ''}" for t in threads)
        found += sorted(_describe_socket(sock) for sock in sockets)
        names = _socket_names() if fds else {}
        found += [_describe_fd(fd, target, names) for fd, target in sorted(fds.items())]
        return found

    def check(self) -> None:
        """Raise `LeakError` naming what leaked; stop the leaked actors first.

        Raises:
            LeakError: something new is still there after `timeout` seconds.
        """
        found = self.leaks()
        if not found:
            return
        for ref in self._new_actors():
            ref.stop(block=False)  # so the next test does not start polluted
        raise LeakError(found, self.timeout)

    def __enter__(self) -> LeakCheck:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.check()

    # -- what is new -------------------------------------------------------------

    def _new_actors(self) -> list[pykka.ActorRef[Any]]:
        before = self._before.actors
        return [ref for ref in pykka.ActorRegistry.get_all() if ref.actor_urn not in before]

    def _new_threads(self) -> list[threading.Thread]:
        before = self._before.threads
        return [
            t
            for t in threading.enumerate()
            if t not in before and t.name not in self.ignore_threads and t.is_alive()
        ]

    def _new_sockets(self) -> list[zmq.Socket[Any]]:
        before = self._before.sockets
        return [sock for sock in _open_sockets() if sock not in before]

    def _new_fds(self) -> dict[int, str]:
        before = self._before.fds
        return {fd: t for fd, t in _open_fds().items() if before.get(fd) != t}


def _warm_zmq() -> None:
    """Start the global ZeroMQ context's threads before any snapshot.

    The context opens its descriptors with its first socket and keeps them for
    the life of the process; without this the first test to connect anywhere
    would see them as its leak.
    """
    global _warmed
    with _warm_lock:
        if _warmed:
            return
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PAIR)
        mailbox = int(sock.getsockopt(zmq.FD))
        target = _open_fds().get(mailbox)
        sock.close(linger=0)
        deadline = time.monotonic() + 2.0
        while target is not None and _open_fds().get(mailbox) == target:
            if time.monotonic() >= deadline:
                break
            _pause.wait(_POLL)
        _warmed = True


def _open_sockets() -> list[zmq.Socket[Any]]:
    """The ZeroMQ sockets of this process that are not closed (found through gc)."""
    return [o for o in gc.get_objects() if isinstance(o, zmq.Socket) and not o.closed]


def _describe_socket(sock: zmq.Socket[Any]) -> str:
    owner = _owner_of(sock)
    held = f" held by {owner}" if owner else ""
    return f"zmq socket {sock!r}{held}"


def _owner_of(obj: object) -> str | None:
    """The repr of an object one of whose attributes is `obj`, if there is one."""
    for ref in gc.get_referrers(obj):
        if isinstance(ref, dict):  # an instance's materialised __dict__
            for holder in gc.get_referrers(ref):
                if getattr(holder, "__dict__", None) is ref:
                    return repr(holder)
        elif _has_attribute(ref, obj):  # attributes stored inline (3.11+)
            return repr(ref)
    return None


def _has_attribute(holder: object, obj: object) -> bool:
    if isinstance(holder, (list, tuple, set, frozenset, type)) or inspect.isframe(holder):
        return False
    try:
        values = vars(holder).values()
    except TypeError:
        return False
    return any(value is obj for value in values)


def _fd_table_available() -> bool:
    return sys.platform.startswith("linux") and os.path.isdir(_FD_DIR)


def _open_fds() -> dict[int, str]:
    """The open descriptors of this process and what they point at (Linux; elsewhere empty)."""
    if not _fd_table_available():
        return {}
    found: dict[int, str] = {}
    for name in os.listdir(_FD_DIR):
        try:
            found[int(name)] = os.readlink(f"{_FD_DIR}/{name}")
        except OSError:
            continue  # the directory's own descriptor, or one closed meanwhile
    return found


def _describe_fd(fd: int, target: str, names: dict[str, str]) -> str:
    if target.startswith("socket:["):
        inode = target[len("socket:[") : -1]
        if inode in names:
            return f"fd {fd}: {target} {names[inode]}"
    return f"fd {fd}: {target}"


def _socket_names() -> dict[str, str]:
    """Socket inode -> "tcp local -> remote", from /proc/self/net/tcp and tcp6."""
    names: dict[str, str] = {}
    for proto in ("tcp", "tcp6"):
        try:
            with open(f"/proc/self/net/{proto}") as table:
                rows = table.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) < 10:
                continue
            local, remote, inode = _address(cols[1]), _address(cols[2]), cols[9]
            names[inode] = f"{proto} {local} -> {remote}" if remote else f"{proto} {local}"
    return names


def _address(hex_address: str) -> str:
    """Read a /proc/net address ("0100007F:1F90" is 127.0.0.1:8080); all zeros read as ""."""
    host_hex, _, port_hex = hex_address.partition(":")
    port = int(port_hex, 16)
    raw = bytes.fromhex(host_hex)
    if len(raw) == 4:
        host = ".".join(str(b) for b in reversed(raw))
    else:  # four little-endian 32-bit words
        words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
        host = f"[{ipaddress.IPv6Address(b''.join(words))}]"
    if port == 0 and set(host_hex) == {"0"}:
        return ""
    return f"{host}:{port}"
