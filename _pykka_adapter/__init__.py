"""The one place that names pykka's private internals, and a check of each.

pykka's public API has no way to put a message into an actor's inbox without
a proxy call's overhead, to choose an actor's inbox, or to run our own actor
loop; the runtime does all three, so it depends on a few private names. They
are imported here and nowhere else, and the overridden private methods are
listed here, each with a probe: `check_hooks` runs every probe against the
installed pykka and names the hook that changed (``tests/test_pykka_hooks.py``
runs it, so a pykka release that breaks one fails loudly by name).
``pyproject.toml`` pins pykka below its next major version.

It is a top-level package of its own, beside ``actors`` and ``transport``,
because both layers use it and neither may import the other's modules: the
one-host core (``actors._mailbox``, ``actors._timer``) never imports
``transport``, and ``transport`` never imports ``actors`` (DESIGN's layering,
enforced by ``tests/test_layering.py``). It imports pykka and the standard
library only. A package, not a single module, so that its ``py.typed`` marker
installs with it (PEP 561 does not cover single-file modules).
"""

from __future__ import annotations

import contextlib
import inspect
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pykka
from pykka._envelope import Envelope
from pykka._future import GetHookFunc  # type aliases, for our futures' signatures
from pykka._types import OptExcInfo

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "HOOKS",
    "AttachSource",
    "DetachSource",
    "Envelope",
    "GetHookFunc",
    "Hook",
    "MessageSource",
    "OptExcInfo",
    "actor_of",
    "check_hooks",
]


class MessageSource(Protocol):
    """Messages an actor's own thread reads itself, beside its inbox (a socket it owns).

    The actor (``actors._mailbox.ResilientActor``) waits in `wait()` for the
    source and for a descriptor that signals its inbox together, and calls
    `step()` while the source may have work: after `wait()` said so, and
    after each local message if a `wait()` with no time says so.
    """

    def wait(
        self, fd: int | None, timeout: float | None, actor: Any = None
    ) -> tuple[bool, bool]:
        """Block until a message is there or `fd` is readable, at most `timeout` seconds.

        `timeout` None waits without limit, 0 not at all; `fd` None waits for
        the source alone. The source may wait less, for work of its own
        (retries): it then reports work. Given `actor`, a message that woke
        the wait (`fd` quiet) may be handled at once, as `step()` would: it
        then reports work (more may have come; and the actor may have
        stopped, which the caller checks before `step()`).

        Returns:
            whether `step()` has work, and whether `fd` is readable.
        """
        ...

    def step(self, actor: Any) -> bool | None:
        """Handle at most one message for `actor`, on its thread, never blocking.

        `actor` is the ``ResilientActor`` serving this source: the source hands
        a message to its ``_dispatch`` (which returns False once the actor must
        stop), or runs a plain request itself with the same rules.

        Returns:
            True when a message was handled, None when there is none now,
            False when the actor must stop (a handler raised a `BaseException`).
        """
        ...

    def close(self) -> None:
        """Release the source (in the actor's thread, or once that thread is gone)."""
        ...


class AttachSource:
    """A message telling a `ResilientActor` to serve `source` from its own thread."""

    __slots__ = ("source",)

    def __init__(self, source: MessageSource) -> None:
        self.source = source


class DetachSource:
    """A message telling a `ResilientActor` to close `source` and stop serving it."""

    __slots__ = ("source",)

    def __init__(self, source: MessageSource) -> None:
        self.source = source


PYKKA_SUPPORTED = ">=4.1,<5"
"""The pykka versions these hooks were checked against (as pinned in pyproject.toml)."""


@dataclass(frozen=True)
class Hook:
    """A private pykka name the runtime relies on.

    Args:
        name: the private name, as pykka spells it.
        used_by: where and why we use it.
        probe: raises `AssertionError` (or any error) when pykka no longer behaves so.
    """

    name: str
    used_by: str
    probe: Callable[[], None]


def actor_of(ref: pykka.ActorRef[Any]) -> Any | None:
    """The actor object behind `ref`, or None once it is gone.

    pykka's own `ActorProxy` introspects its actor through this weak reference,
    from the caller's thread; the bridge does the same to describe an actor.
    """
    return ref._actor_weakref()


def _probe_actor_of() -> None:
    calls: list[str] = []
    actors: list[_Probe] = []
    ref = _Probe.start(calls, actors)
    try:
        assert actor_of(ref) is actors[0]
    finally:
        ref.stop(timeout=5)


def _probe_envelope() -> None:
    future: pykka.Future[Any] = pykka.ThreadingFuture()
    envelope = Envelope("message", reply_to=future)
    assert envelope.message == "message"
    assert envelope.reply_to is future
    assert Envelope("m").reply_to is None


def _probe_future_init() -> None:
    class Bare(pykka.Future[Any]):
        pass

    future = Bare.__new__(Bare)
    pykka.Future.__init__(future)
    assert set(vars(future)) == {"_get_hook", "_get_hook_result"}, sorted(vars(future))
    hooked = Bare.__new__(Bare)
    hooked._get_hook = None  # what our futures set instead of calling __init__
    pykka.Future.__init__(hooked)
    hooked.set_get_hook(lambda timeout: ("hooked", timeout))
    assert hooked.get(timeout=1.5) == ("hooked", 1.5)


def _probe_signature(func: Callable[..., Any], params: list[str]) -> None:
    actual = [p for p in inspect.signature(func).parameters if p != "self"]
    assert actual == params, f"parameters {actual}, expected {params}"


class _ProbeInbox(queue.SimpleQueue[Envelope[Any]]):
    """The probe's inbox: a `queue.SimpleQueue`, as ours, of a type we can recognise."""


class _Probe(pykka.ThreadingActor):
    """An actor that records which private hooks pykka calls, and in what order."""

    fail_on_start = False

    def __init__(self, calls: list[str], actors: list[_Probe]) -> None:
        self.calls = calls
        super().__init__()
        actors.append(self)

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Envelope[Any]]:
        return _ProbeInbox()

    def on_start(self) -> None:
        if self.fail_on_start:
            raise RuntimeError("probe: failing on_start")

    def _actor_loop(self) -> None:
        self.calls.append("_actor_loop")
        super()._actor_loop()

    def _actor_loop_running(self) -> None:
        self.calls.append("_actor_loop_running")
        super()._actor_loop_running()

    def _handle_receive(self, message: Any) -> Any:
        self.calls.append("_handle_receive")
        return super()._handle_receive(message)

    def _handle_failure(self, *exc_info: Any) -> None:
        self.calls.append("_handle_failure")
        super()._handle_failure(*exc_info)

    def on_receive(self, message: Any) -> Any:
        return ("got", message)


class _FailingProbe(_Probe):
    fail_on_start = True


def _run_probe(*, fail_on_start: bool = False) -> tuple[list[str], _Probe]:
    calls: list[str] = []
    actors: list[_Probe] = []
    probe = _FailingProbe if fail_on_start else _Probe
    ref = probe.start(calls, actors)
    actor = actors[0]
    try:
        if fail_on_start:
            assert actor.actor_stopped.wait(5), "the actor did not stop after a failing on_start"
        else:
            inbox = actor.actor_inbox
            assert isinstance(inbox, _ProbeInbox), f"our inbox was not used: {inbox!r}"
            future: pykka.Future[Any] = pykka.ThreadingFuture()
            inbox.put(Envelope("ping", reply_to=future))  # a message put straight in the inbox
            assert future.get(timeout=5) == ("got", "ping")
    finally:
        if ref.is_alive():  # a broken hook must not leave a probe running
            with contextlib.suppress(Exception):
                ref.stop(block=True, timeout=5)
    return calls, actor


def _probe_inbox() -> None:
    _run_probe()


def _probe_actor_loop() -> None:
    calls, _ = _run_probe()
    assert calls[:3] == ["_actor_loop", "_actor_loop_running", "_handle_receive"], calls


def _probe_handle_receive() -> None:
    _probe_signature(pykka.Actor._handle_receive, ["message"])
    calls, _ = _run_probe()
    assert "_handle_receive" in calls, calls


def _probe_handle_failure() -> None:
    _probe_signature(
        pykka.Actor._handle_failure, ["exception_type", "exception_value", "traceback"]
    )
    calls, actor = _run_probe(fail_on_start=True)
    assert "_handle_failure" in calls, calls
    assert actor.actor_stopped.is_set()


def _probe_inbox_protocol() -> None:
    # The timer waits on the inbox with a timeout, and pykka's teardown drains it.
    inbox = _Probe._create_actor_inbox()
    assert inbox.empty()
    try:
        inbox.get(timeout=0.001)
    except queue.Empty:
        pass
    else:  # pragma: no cover - an empty queue
        raise AssertionError("get(timeout=) returned from an empty inbox")
    _probe_signature(pykka.Actor._actor_loop_running, [])
    assert isinstance(_Probe([], []).actor_stopped, threading.Event)


class _Engine(pykka.ThreadingActor):
    """An actor another engine runs: no thread; its futures and loop start are its own."""

    futures: list[pykka.Future[Any]] = []
    adopted: list[pykka.Actor] = []

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        future: pykka.Future[Any] = pykka.ThreadingFuture()
        _Engine.futures.append(future)
        return future

    def _start_actor_loop(self) -> None:
        _Engine.adopted.append(self)

    def on_start(self) -> None:
        raise RuntimeError("probe: failing on_start")


def _probe_engine() -> None:
    _Engine.futures.clear()
    _Engine.adopted.clear()
    ref = _Engine.start()
    try:
        assert len(_Engine.adopted) == 1, "start() did not call _start_actor_loop"
        actor = _Engine.adopted[0]
        future = ref.ask("ping", block=False)
        assert _Engine.futures == [future], "ask() did not take its future from _create_future"
        envelope = actor.actor_inbox.get()
        assert envelope.reply_to is future
        ref.stop(block=False)
        assert isinstance(actor.actor_inbox.get().message, pykka.messages._ActorStop)
        _probe_signature(pykka.Actor._actor_loop_setup, [])
        actor._actor_loop_setup()  # on_start fails: the actor stops, as in its own thread
        assert actor.actor_stopped.is_set()
    finally:
        pykka.ActorRegistry.unregister(ref)


HOOKS: tuple[Hook, ...] = (
    Hook(
        "pykka.ActorRef._actor_weakref",
        "transport._bridge describes an actor (describe requests) from its I/O thread",
        _probe_actor_of,
    ),
    Hook(
        "pykka._envelope.Envelope",
        "transport._bridge and actors._timer put messages straight into an actor's inbox",
        _probe_envelope,
    ),
    Hook(
        "pykka.Future._get_hook / Future.__init__",
        "transport's futures skip Future.__init__ (one per call) and set _get_hook themselves",
        _probe_future_init,
    ),
    Hook(
        "pykka.Actor._create_actor_inbox",
        "actors._mailbox gives every actor a queue.SimpleQueue inbox",
        _probe_inbox,
    ),
    Hook(
        "pykka.Actor._actor_loop / _actor_loop_running",
        "actors._mailbox runs its own message loop and reports failures to a supervisor",
        _probe_actor_loop,
    ),
    Hook(
        "pykka.Actor._handle_receive",
        "actors._mailbox dispatches each message through it",
        _probe_handle_receive,
    ),
    Hook(
        "pykka.Actor._handle_failure",
        "actors._mailbox records the failure that stopped an actor",
        _probe_handle_failure,
    ),
    Hook(
        "pykka.Actor.actor_inbox (get(timeout=), empty()) / actor_stopped",
        "actors._timer waits on its inbox with a timeout; pykka drains it on stop",
        _probe_inbox_protocol,
    ),
    Hook(
        "pykka.Actor._create_future / _start_actor_loop / _actor_loop_setup / _ActorStop",
        "actors.testing runs actors on its scheduler: its own futures, no thread, on_start "
        "as a step, and a stop recognised in a dead actor's queue",
        _probe_engine,
    ),
)
"""Every private pykka name the runtime relies on, with its probe."""


def check_hooks() -> list[str]:
    """Run every probe; return one line per broken hook, naming it (empty: all hold)."""
    broken = []
    for hook in HOOKS:
        try:
            hook.probe()
        except Exception as exc:  # noqa: BLE001 - any failure means the hook changed
            broken.append(f"{hook.name} ({hook.used_by}): {type(exc).__name__}: {exc}")
    return broken
