"""The simulated network: hosts, a bridge per host, and faults.

Managers on different hosts talk through `SimDirectory` proxies. A call is
encoded with the real codec and protocol (only wire-legal values cross), travels
as a packet on a per-(sender, destination) FIFO link, and is checked on arrival
exactly as the bridge checks it, with the bridge's own rules (unknown actor,
hidden or missing method, incompatible version, a full mailbox); the reply or
the remote exception comes back encoded and is rebuilt with the real error
mapping. A call has a deadline, after which it fails with
`transport.MessagingTimeout`, as through the real client.

Proxies are transport's own `RemoteProxy` over a `SimConnection`: the first
proxy of an actor costs a describe round trip (answered by the simulated bridge
at once, like the real one), unknown names raise `NoSuchMethod` at attribute
access, and `proxy.attr` / `proxy.attr = v` read and set inside the mailbox.

Flow control is modelled as the bridge does it: each served actor's mailbox
holds at most its bound of requests from the bridge (`expose(...,
mailbox_limit=)`, the class's `MAILBOX_LIMIT`, else 1000); past it a call gets
`transport.Overloaded` and a cast is dropped. A request carries its time to
live and its send time (the bridge's `TransitClock` estimates how late it
arrives): one that arrives after its caller gave up is dropped, and one taken
from the mailbox after that is not run (no reply), as in `actors.Manager`'s
mailbox. Replies to slow readers are not
modelled (a simulated reader always reads).

Faults are scheduler choices: a packet may be lost (a request, or a reply after
its handler ran) or delayed; hosts may be partitioned, healed, crashed and
restarted. Delivery stays at-most-once: nothing is ever sent twice.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka
from pykka import messages

from _pykka_adapter import Envelope, actor_of
from actors._discovery import Directory
from actors._heartbeat import HeartbeatWriter
from actors.testing._actors import SimFuture
from actors.testing._scheduler import NET
from actors.testing._trace import summarize
from transport._bridge import (
    ContextProxyCall,
    describe_actor,
    is_remotely_callable,
    is_remotely_readable,
    is_remotely_settable,
)
from transport._calls import check_version, described, outcome
from transport._codec import Codec, describe_exception, format_traceback
from transport._context import RequestContext, current_context, run_context
from transport._errors import BRIDGE_ERRORS, MessagingTimeout
from transport._flow import DEFAULT_MAILBOX_LIMIT, MailboxView
from transport._protocol import (
    Kind,
    ProtocolError,
    Request,
    decode_request,
    encode_error,
    encode_reply,
    encode_request,
    version_is_compatible,
)
from transport._proxy import Description, RemoteProxy
from transport._transit import TransitClock

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Iterable

    import transport
    from _pykka_adapter import OptExcInfo
    from actors._service import Service
    from actors.testing._scheduler import Proc, Scheduler

__all__ = [
    "Faults",
    "Host",
    "InlineHeartbeats",
    "SimBridge",
    "SimConnection",
    "SimDirectory",
    "SimNetwork",
]

logger = logging.getLogger(__name__)

SCHEME = "sim://"


@dataclass(frozen=True)
class Faults:
    """How often each fault is chosen, in percent of the chances it has.

    Args:
        drop_request: a request packet is lost.
        drop_reply: a reply packet is lost (after its handler ran).
        delay: a packet is held for `delay_seconds` of virtual time.
        delay_seconds: how long a delayed packet waits.
        stall: pending messages wait while time moves to the next timer tick.
        node: per step, a partition, heal, crash or restart happens.
        max_node_faults: at most this many node faults per run.
        crashes: node faults may crash and restart hosts (else partitions only).
    """

    drop_request: int = 3
    drop_reply: int = 3
    delay: int = 3
    delay_seconds: float = 5.0
    stall: int = 1
    node: int = 1
    max_node_faults: int = 2
    crashes: bool = True

    @classmethod
    def none(cls) -> Faults:
        """No fault at all."""
        return cls(0, 0, 0, 0.0, 0, 0, 0, crashes=False)


class SimBridge:
    """A host's bridge in a simulation: what `Service` exposes its manager on."""

    def __init__(self, host: str, mailbox_limit: int = DEFAULT_MAILBOX_LIMIT) -> None:
        self.host = host
        self.endpoint = f"{SCHEME}{host}"
        self.mailbox_limit = mailbox_limit
        self.transit = TransitClock()
        """How late requests arrive (the bridge's estimate, from their `sent` field)."""
        self.actors: dict[str, MailboxView] = {}
        """What it serves, by name: the bridge's view of each actor's mailbox."""

    def expose(
        self, name: str, actor_ref: pykka.ActorRef[Any], *, mailbox_limit: int | None = None
    ) -> None:
        """Serve `actor_ref` under `name` (`transport.Bridge.expose`: same bound rules)."""
        if mailbox_limit is not None and mailbox_limit < 1:
            raise ValueError(f"mailbox_limit must be at least 1, not {mailbox_limit}")
        for view in self.actors.values():
            if view.ref.actor_urn == actor_ref.actor_urn:
                if mailbox_limit is not None:
                    view.limit = mailbox_limit
                self.actors[name] = view
                return
        limit = mailbox_limit
        if limit is None:
            limit = getattr(actor_ref.actor_class, "MAILBOX_LIMIT", None) or self.mailbox_limit
        self.actors[name] = MailboxView(actor_ref, limit)

    def unexpose(self, name: str) -> None:
        """Stop serving `name`."""
        self.actors.pop(name, None)


@dataclass
class Host:
    """One simulated host: its bridge, its timer, what it starts, whether it is up."""

    name: str
    bridge: SimBridge
    timer: pykka.ActorRef[Any] | None = None
    up: bool = True
    starts: list[Any] | None = None

    def __post_init__(self) -> None:
        if self.starts is None:
            self.starts = []


class _Packet:
    __slots__ = ("body", "caller", "dst", "kind", "label", "link", "msg_id", "not_before",
                 "sender", "seq", "src")  # fmt: skip

    def __init__(  # noqa: PLR0917
        self,
        seq: int,
        kind: str,
        sender: Proc | None,
        src: str,
        dst: str,
        body: bytes,
        msg_id: int,
        label: str,
        link: deque[_Packet],
    ) -> None:
        self.seq = seq
        self.kind = kind
        self.sender = sender
        self.src = src
        self.dst = dst
        self.body = body
        self.msg_id = msg_id
        self.label = label
        self.link = link
        self.not_before = 0.0
        self.caller = sender.name if sender is not None else f"test@{src}"


class SimRemoteFuture(SimFuture):
    """The future of a call over the simulated bridge: fails with `MessagingTimeout`."""

    timeout_error = MessagingTimeout

    def __init__(self, scheduler: Scheduler | None = None) -> None:
        super().__init__(scheduler)
        self.deadline = 0.0


class _BridgeReply(pykka.Future[Any]):
    """The `reply_to` of a call delivered over the simulated bridge."""

    def __init__(self, network: SimNetwork, request: _Packet, host: str, view: MailboxView) -> None:
        super().__init__()
        self._network = network
        self._request = request
        self._host = host
        self._view = view
        self._done = False

    def _finish(self) -> None:
        if self._done:
            raise Exception("reply already sent")
        self._done = True
        self._view.finished += 1

    def expired(self) -> None:
        """The caller gave up before the call started: it never runs, no reply (as the bridge)."""
        self._finish()
        net = self._network
        net.scheduler.trace.add(net.scheduler.clock.monotonic(), f"{self._host} bridge",
                                f"{self._request.label} expired: not run")  # fmt: skip

    def set(self, value: Any | None = None) -> None:
        self._finish()
        net = self._network
        try:
            body = encode_reply(net.codec, self._request.msg_id, value)
        except TypeError as exc:
            body = net.error_body(self._request.msg_id, exc)
        net.reply(self._request, body, self._host)

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        self._finish()
        exc = exc_info[1] if exc_info is not None else None
        if exc is None:
            exc = RuntimeError("unknown failure")
        net = self._network
        net.reply(self._request, net.error_body(self._request.msg_id, exc), self._host)


class _CastReply(pykka.Future[Any]):
    """The `reply_to` of a cast over the simulated bridge: counts it out of the mailbox."""

    def __init__(self, view: MailboxView, label: str) -> None:
        super().__init__()
        self._view = view
        self._label = label

    def set(self, value: Any | None = None) -> None:
        self._view.finished += 1

    def expired(self) -> None:
        """Never called: casts carry no time to live."""
        self._view.finished += 1

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        self._view.finished += 1
        exc = exc_info[1] if exc_info is not None else None
        logger.error("cast %s raised", self._label, exc_info=exc)


class SimNetwork:
    """Hosts, links and pending calls of one simulation (the scheduler's `Network`)."""

    def __init__(self, scheduler: Scheduler, faults: Faults) -> None:
        self.scheduler = scheduler
        self.faults = faults
        self.codec = Codec()
        self.hosts: dict[str, Host] = {}
        self._links: dict[tuple[str, str, str], deque[_Packet]] = {}
        self._calls: dict[int, SimRemoteFuture] = {}
        self._ids = itertools.count(1)
        self._cut: set[frozenset[str]] = set()
        self.node_faults = 0
        self.restarting = False

    # -- hosts -------------------------------------------------------------------------

    def host(self, name: str) -> Host:
        """The host called `name` (made on first use)."""
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = Host(name, SimBridge(name))
        return host

    def reachable(self, a: str, b: str) -> bool:
        """Whether hosts `a` and `b` can talk now."""
        return a == b or frozenset((a, b)) not in self._cut

    def partition(self, groups: Iterable[Iterable[str]]) -> list[str]:
        """Cut every pair of hosts in different `groups`; return the pairs cut."""
        sets = [sorted(set(g)) for g in groups]
        cut = []
        for i, left in enumerate(sets):
            for right in sets[i + 1 :]:
                for a in left:
                    for b in right:
                        if a != b:
                            self._cut.add(frozenset((a, b)))
                            cut.append(f"{a}|{b}")
        return cut

    def heal(self) -> None:
        """Remove every partition."""
        self._cut.clear()

    @property
    def partitions(self) -> list[str]:
        """The cut pairs, as ``a|b``."""
        return sorted("|".join(sorted(pair)) for pair in self._cut)

    # -- sending -------------------------------------------------------------------------

    def send(  # noqa: PLR0917
        self,
        dst: str,
        name: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        version: str | None,
        timeout: float,
        *,
        kind: Kind,
        allowed: frozenset[str],
        origin: str = "test",
    ) -> SimRemoteFuture | None:
        """Send a request of `kind` from whoever runs now to `name` on host `dst`.

        A call (and a describe, get or set) carries its time to live, as the
        real client's do; the future of anything but a cast is returned.

        Raises:
            TypeError: an argument cannot cross the wire (the real codec's message).
        """
        sched = self.scheduler
        msg_id = next(self._ids)
        cast = kind is Kind.CAST
        ctx = current_context()
        body = encode_request(
            self.codec, kind=kind, msg_id=msg_id, actor=name, method=method, args=args,
            kwargs=kwargs, version=version,
            context=ctx.to_dict() if ctx is not None else {"request_id": f"sim-{msg_id}"},
            ttl=None if cast else int(timeout * 1000) + 1,
            sent=None if cast else int(sched.clock.monotonic() * 1000),
        )  # fmt: skip
        sender = sched.current
        src = sender.host if sender is not None else origin
        src_name = sender.name if sender is not None else f"test@{origin}"
        parts = [summarize(a, 24) for a in args] + [
            f"{k}={summarize(v, 24)}" for k, v in kwargs.items()
        ]
        if kind is Kind.DESCRIBE:
            label = f"describe {name}"
        elif kind is Kind.GET:
            label = f"{name}.{method}"
        elif kind is Kind.SET:
            label = f"{name}.{method} = {parts[0] if parts else '?'}"
        else:
            label = f"{name}.{method}({', '.join(parts)})"
        future: SimRemoteFuture | None = None
        if not cast:
            future = SimRemoteFuture(sched)
            future.label = f"{label} over the bridge"
            future.deadline = sched.clock.monotonic() + timeout
            future.allowed = allowed  # type: ignore[attr-defined]
            self._calls[msg_id] = future
        link = self._link(src_name, dst, "req")
        link.append(_Packet(sched.next_seq(), "request", sender, src, dst, body, msg_id,
                            label, link))  # fmt: skip
        return future

    def _link(self, src: str, dst: str, kind: str) -> deque[_Packet]:
        key = (src, dst, kind)
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = deque()
        return link

    def error_body(self, msg_id: int, exc: BaseException) -> bytes:
        """An error reply for `exc`, as the bridge encodes it."""
        module, qualname, message, args = describe_exception(exc)
        return encode_error(
            self.codec, msg_id, error_kind="remote", exc_module=module, exc_name=qualname,
            message=message, exc_args=args, traceback=format_traceback(exc),
        )  # fmt: skip

    def refusal_body(self, msg_id: int, kind: str, message: str) -> bytes:
        """A refusal (unknown actor, no such method, ...), as the bridge encodes it."""
        cls = BRIDGE_ERRORS[kind]
        return encode_error(
            self.codec, msg_id, error_kind=kind, exc_module="transport",
            exc_name=cls.__qualname__, message=message, exc_args=[message], traceback="",
        )  # fmt: skip

    def reply(self, request: _Packet, body: bytes, host: str) -> None:
        """Send a reply packet back to the caller of `request`."""
        if not self.host(host).up:
            return
        sender = self.scheduler.current
        src_name = sender.name if sender is not None else host
        link = self._link(src_name, request.src, "rep")
        packet = _Packet(self.scheduler.next_seq(), "reply", sender, host, request.src, body,
                         request.msg_id, request.label, link)  # fmt: skip
        packet.caller = request.caller
        link.append(packet)

    # -- the scheduler's side -----------------------------------------------------------------

    def candidates(self, now: float, out: list[tuple[int, int, Any, Any]], key: int) -> None:
        """Append the link heads and expired calls that can be handled now."""
        for link in self._links.values():
            if link:
                packet = link[0]
                if packet.not_before <= now:
                    out.append((packet.seq, NET, None, packet))
        for future in self._calls.values():
            if future.deadline <= now and not future.done:
                out.append((key, NET, None, future))

    def next_due(self) -> float | None:
        """The next delayed packet or call deadline."""
        due: float | None = None
        for link in self._links.values():
            if link and (due is None or link[0].not_before < due):
                due = link[0].not_before
        for future in self._calls.values():
            if not future.done and (due is None or future.deadline < due):
                due = future.deadline
        return due

    def pending(self) -> bool:
        """Whether a packet is on a link or a call awaits its reply."""
        return any(self._links.values()) or any(not f.done for f in self._calls.values())

    def deliver(self, item: Any) -> None:
        """Handle one packet arrival or call deadline."""
        sched = self.scheduler
        now = sched.clock.monotonic()
        if isinstance(item, SimRemoteFuture):
            self._calls = {k: f for k, f in self._calls.items() if f is not item}
            sched.trace.add(now, "bridge", f"{item.label} times out (MessagingTimeout)")
            item.set_exception((MessagingTimeout, MessagingTimeout(
                f"no reply to {item.label} before the deadline"), None))  # fmt: skip
            return
        packet: _Packet = item
        packet.link.popleft()
        route = f"{packet.src} -> {packet.dst}"
        if not self.host(packet.dst).up or not self.reachable(packet.src, packet.dst):
            why = "host down" if not self.host(packet.dst).up else "partition"
            sched.trace.add(now, "FAULT", f"{packet.kind} {packet.label} lost ({why}, {route})")
            return
        if packet.kind == "request":
            if not self._lost_or_delayed(
                packet, now, self.faults.drop_request, f"request {packet.label}", route, ""
            ):
                self._arrive(packet, now)
            return
        if self._lost_or_delayed(
            packet, now, self.faults.drop_reply, f"reply to {packet.label}", route, " after it ran"
        ):
            return
        future = self._calls.pop(packet.msg_id, None)
        if future is None or future.done:
            return
        sched.trace.add(now, f"{packet.caller} <- bridge", f"reply to {packet.label}")
        allowed = frozenset({"builtins", *getattr(future, "allowed", ())})
        _, value, exc = outcome(self.codec, packet.body, allowed)  # the real client's mapping
        if exc is None:
            future.set(value)
        else:
            future.set_exception((type(exc), exc, None))

    def _lost_or_delayed(  # noqa: PLR0917 - private
        self, packet: _Packet, now: float, drop: int, what: str, route: str, lost_when: str
    ) -> bool:
        """Apply the drop (chance `drop`) or delay fault to `packet`; whether one hit it."""
        faults = self.faults
        sched = self.scheduler
        if drop and sched.chooser.fault(drop):
            sched.trace.add(now, "FAULT", f"{what} lost{lost_when} ({route})")
            return True
        if faults.delay and sched.chooser.fault(faults.delay):
            packet.not_before = now + faults.delay_seconds
            packet.link.appendleft(packet)
            sched.trace.add(now, "FAULT", f"{what} delayed {faults.delay_seconds:g} s ({route})")
            return True
        return False

    @staticmethod
    def _refusal(req: Request, view: MailboxView | None) -> tuple[str, str] | None:
        """What the bridge refuses `req` with (its own rules), or None."""
        ref = view.ref if view is not None else None
        if view is None or ref is None or not ref.is_alive():
            return ("unknown_actor", f"no actor {req.actor!r}")
        cls = ref.actor_class
        implemented = str(getattr(cls, "RPC_API_VERSION", "1.0"))
        if req.version is not None and not version_is_compatible(implemented, req.version):
            return ("unsupported_version", f"{req.actor} implements RPC version "
                    f"{implemented}, cannot serve {req.version}")  # fmt: skip
        if req.kind is Kind.DESCRIBE and actor_of(ref) is None:
            return ("unknown_actor", f"no actor {req.actor!r}")
        if req.kind is Kind.DESCRIBE:
            return None
        if req.kind is Kind.GET and not is_remotely_readable(cls, req.method):
            return ("no_such_method", f"{req.actor} has no attribute {req.method!r} "
                    "readable by remote callers")  # fmt: skip
        if req.kind is Kind.SET and not is_remotely_settable(actor_of(ref), req.method):
            return ("no_such_method", f"{req.actor} has no attribute {req.method!r} "
                    "settable by remote callers")  # fmt: skip
        if req.kind in (Kind.CALL, Kind.CAST) and not is_remotely_callable(cls, req.method):
            return ("no_such_method", f"{req.actor} has no method {req.method!r}")
        if view.full():
            return ("overloaded", f"{req.actor}'s mailbox is full ({view.limit} requests)")
        return None

    def _deadline(self, req: Request, packet: _Packet, now: float) -> float | None:
        """When the request's caller gives up, as the bridge estimates it (TTL less lateness)."""
        if req.ttl is None:
            return None
        deadline = now + req.ttl / 1000
        if req.sent is not None:  # what the caller's timeout already spent on the way
            transit = self.host(packet.dst).bridge.transit
            deadline -= transit.lateness((packet.caller.encode(),), req.sent, now)
        return deadline

    def _arrive(self, packet: _Packet, now: float) -> None:
        """Check a request as the bridge does; refuse it, answer it, or put it in the mailbox."""
        sched = self.scheduler
        try:
            req = decode_request(self.codec, packet.body)
        except ProtocolError as exc:  # cannot happen with our own encoder, but as the bridge does
            logger.warning("dropping a malformed message: %s", exc)
            return
        is_call = req.kind is not Kind.CAST
        view = self.host(packet.dst).bridge.actors.get(req.actor)
        refusal = self._refusal(req, view)
        if refusal is None and req.kind is Kind.DESCRIBE:  # answered at once, however busy
            assert view is not None
            sched.trace.add(now, f"{packet.dst} bridge", f"answers {packet.label}")
            body = encode_reply(self.codec, req.msg_id, describe_actor(actor_of(view.ref)))
            self.reply(packet, body, packet.dst)
            return
        if refusal is not None:
            sched.trace.add(now, f"{packet.dst} bridge", f"refuses {packet.label}: {refusal[0]}")
            if is_call:
                self.reply(packet, self.refusal_body(req.msg_id, *refusal), packet.dst)
            return
        assert view is not None
        proc = sched.proc_of(view.ref)
        if proc is None:
            return
        message: Any
        if req.kind is Kind.GET:
            message = messages.ProxyGetAttr(attr_path=(req.method,))
        elif req.kind is Kind.SET:
            message = messages.ProxySetAttr(attr_path=(req.method,), value=req.args[0])
        else:
            deadline = self._deadline(req, packet, now)
            if deadline is not None and deadline <= now:  # its caller has given up already
                sched.trace.add(now, f"{packet.dst} bridge", f"{packet.label} expired on arrival")
                return
            context = run_context(RequestContext.from_wire(req.context))
            message = ContextProxyCall((req.method,), req.args, req.kwargs, context, deadline)
        reply_to: pykka.Future[Any] = (
            _BridgeReply(self, packet, packet.dst, view) if is_call
            else _CastReply(view, packet.label)
        )  # fmt: skip
        view.accepted += 1
        label = packet.label if req.kind in (Kind.GET, Kind.SET) else (
            f"{req.method}({packet.label.partition('(')[2]}")  # fmt: skip
        envelope = Envelope(message, reply_to=reply_to)
        sched.enqueue(proc, envelope, sender=packet.sender, explicit=True, path=1, label=label)

    # -- node faults -------------------------------------------------------------------------------

    def crashable(self) -> list[str]:
        """Hosts that are up and run something."""
        return [h.name for h in self.hosts.values() if h.up and h.starts]


class SimConnection:
    """A `transport.Connection` over the simulated bridge; its proxies are transport's own.

    `proxy()` describes the actor first (one round trip, cached per connection),
    so a `transport.RemoteProxy` built on it behaves as over ZeroMQ.
    """

    def __init__(
        self,
        network: SimNetwork,
        endpoint: str,
        timeout: float,
        allowed: frozenset[str],
        origin: str = "test",
    ) -> None:
        self.network = network
        self.origin = origin
        self.endpoint = endpoint
        self.host = endpoint[len(SCHEME) :] if endpoint.startswith(SCHEME) else endpoint
        self.timeout = timeout
        self.allowed = allowed
        self._descriptions: dict[str, Description] = {}

    def __repr__(self) -> str:
        return f"<SimConnection {self.endpoint} from {self.origin}>"

    def proxy(
        self,
        name: str,
        actor_class: type[Any] | str | None = None,
        version: str | None = None,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> RemoteProxy[Any]:
        """A proxy of actor `name` on this host (`transport.Connection.proxy`, same arguments).

        Raises:
            UnknownActor: the bridge serves no actor `name`.
            UnsupportedVersion: the actor cannot serve `version`.
            MessagingTimeout: the describe request got no answer in time.
        """
        if isinstance(actor_class, str):  # the version given as the second positional
            version = actor_class
        description = self._describe(name, version, timeout) if check else None
        return RemoteProxy(self, name, version, timeout, description)  # type: ignore[arg-type]

    def describe(self, name: str, *, fresh: bool = False) -> Description:
        """Tell what the actor `name` exposes (`transport.Connection.describe`)."""
        return self._describe(name, None, None, fresh=fresh)

    def close(self, *, linger: float = 0.0) -> None:
        """Nothing to close."""

    # -- what transport's RemoteProxy calls -------------------------------------------------

    def _describe(
        self, name: str, version: str | None, timeout: float | None, *, fresh: bool = False
    ) -> Description:
        description = described(
            self._descriptions, name,
            lambda: self._member(Kind.DESCRIBE, name, "*", (), None, timeout).get(),
            fresh=fresh,
        )  # fmt: skip
        check_version(name, description, version)
        return description

    def _call(  # noqa: PLR0917 - transport's private signature
        self,
        actor: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        version: str | None,
        timeout: float | None,
        kind: Kind = Kind.CALL,
    ) -> SimRemoteFuture:
        future = self.network.send(
            self.host, actor, method, args, kwargs, version,
            self.timeout if timeout is None else timeout,
            kind=kind, allowed=self.allowed, origin=self.origin,
        )  # fmt: skip
        assert future is not None
        return future

    def _member(  # noqa: PLR0917 - transport's private signature
        self,
        kind: Kind,
        actor: str,
        name: str,
        args: tuple[Any, ...],
        version: str | None,
        timeout: float | None,
    ) -> SimRemoteFuture:
        return self._call(actor, name, args, {}, version, timeout, kind)

    def _cast(
        self,
        actor: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        version: str | None,
    ) -> None:
        self.network.send(
            self.host, actor, method, args, kwargs, version, self.timeout,
            kind=Kind.CAST, allowed=self.allowed, origin=self.origin,
        )  # fmt: skip


class SimDirectory(Directory):
    """A `Directory` whose proxies travel over the simulated bridge (same table, same rules)."""

    def __init__(self, network: SimNetwork, origin: str, *args: Any, **kwargs: Any) -> None:
        allowed = frozenset(kwargs.pop("allowed_exception_modules", ()))
        super().__init__(*args, **kwargs)
        self._network = network
        self.origin = origin
        self._allowed = allowed
        self._sim_connections: dict[str, SimConnection] = {}

    def _connection(self, endpoint: str) -> transport.Connection:
        conn = self._sim_connections.get(endpoint)
        if conn is None:
            conn = self._sim_connections[endpoint] = SimConnection(
                self._network, endpoint, self.timeout, self._allowed, self.origin
            )
        return conn  # type: ignore[return-value]

    def close(self) -> None:
        """Forget the connections."""
        self._sim_connections.clear()


def service_of(start: Any) -> Service | None:
    """The `Service` of a host's start record, if it is one."""
    from actors._service import Service  # noqa: PLC0415

    return start if isinstance(start, Service) else None


class InlineHeartbeats(HeartbeatWriter):
    """A service's heartbeat writer in a simulation: writes in the manager's handler, no thread."""

    def __init__(self, write: Callable[[dt.datetime], None], *, name: str) -> None:
        super().__init__(write, name=name)
        self._write_now = write

    def beat(self, now: dt.datetime, *, wait: float) -> bool:
        """Write the heartbeat now."""
        self._write_now(now)
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Nothing is ever in flight."""
        return True

    def stop(self, timeout: float) -> None:
        """No thread to stop."""
