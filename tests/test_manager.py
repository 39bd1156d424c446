"""Manager: hooks, the mailbox, and surviving exceptions in calls and casts."""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from typing import Any

import pykka
import pytest
from pykka.messages import ProxyCall

from actors import Manager, ManualClock, periodic_task
from actors._mailbox import ResilientActor
from actors.db import Database


class Recorder(Manager):
    """Records every hook with the thread it ran in."""

    TOPIC = "recorder"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[str, Any, str]] = []

    def _note(self, name: str, value: Any = None) -> None:
        self.calls.append((name, value, threading.current_thread().name))

    def init_host(
        self, service_id: int | None = None, added_to_cluster: bool | None = None
    ) -> None:
        self._note("init_host", (service_id, added_to_cluster))

    def init_host_with_rpc(self) -> None:
        self._note("init_host_with_rpc")

    def is_working(self) -> bool:
        self._note("is_working")
        return True

    def reset(self) -> None:
        super().reset()
        self._note("reset")

    @periodic_task(spacing=10, run_immediately=True)
    def tidy(self, context: Any) -> None:
        self._note("tidy", context)

    def history(self) -> list[tuple[str, Any, str]]:
        return list(self.calls)

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def echo(self, value: Any) -> Any:
        return value

    def die(self) -> None:
        raise SystemExit("stop right here")


def test_defaults_and_identity(clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTORS_HOST", "configured-host")
    ref = Recorder.start(clock=clock)
    proxy = ref.proxy()
    assert proxy.host.get(timeout=5) == "configured-host"  # falsy host -> the configured one
    assert proxy.service_name.get(timeout=5) == "recorder"  # from TOPIC
    assert proxy.cluster.get(timeout=5) is None
    assert proxy.service_topic_queue.get(timeout=5) == "configured-host"
    assert Recorder.RPC_API_VERSION == "1.0"
    clustered = Recorder.start(host="h1", cluster="c1", service_name="vol", clock=clock).proxy()
    assert clustered.service_topic_queue.get(timeout=5) == "c1"
    assert clustered.service_name.get(timeout=5) == "vol"


def test_hooks_run_in_order_in_the_manager_thread(clock: ManualClock) -> None:
    proxy = Recorder.start(host="node-1", clock=clock).proxy()
    proxy.init_host(service_id=7, added_to_cluster=True).get(timeout=5)
    proxy.init_host_with_rpc().get(timeout=5)
    assert proxy.is_working().get(timeout=5) is True
    idle = proxy.run_periodic_tasks({"admin": True}).get(timeout=5)
    proxy.reset().get(timeout=5)
    history = proxy.history().get(timeout=5)
    assert [name for name, _, _ in history] == [
        "init_host",
        "init_host_with_rpc",
        "is_working",
        "tidy",
        "reset",
    ]
    assert history[0][1] == (7, True)
    assert history[3][1] == {"admin": True}
    assert idle == 10
    threads = {thread for _, _, thread in history}
    assert len(threads) == 1
    assert threads != {threading.current_thread().name}


def test_base_hooks_are_harmless(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    proxy = Manager.start(host="h", clock=clock).proxy()
    assert proxy.init_host().get(timeout=5) is None
    assert proxy.init_host(service_id=3, added_to_cluster=False).get(timeout=5) is None
    assert proxy.init_host_with_rpc().get(timeout=5) is None
    assert proxy.is_working().get(timeout=5) is True
    assert proxy.reset().get(timeout=5) is None
    assert "Resetting cached RPC version pins." in caplog.text
    assert proxy.run_periodic_tasks(None).get(timeout=5) == 60.0


def test_hooks_are_private_to_remote_callers() -> None:
    for name in ("init_host", "init_host_with_rpc", "reset", "run_periodic_tasks"):
        assert name in Manager.RPC_PRIVATE


def test_exception_in_call_reaches_caller_and_manager_survives(clock: ManualClock) -> None:
    proxy = Recorder.start(host="h", clock=clock).proxy()
    with pytest.raises(ValueError, match="bad input"):
        proxy.fail("bad input").get(timeout=5)
    with pytest.raises(TypeError):
        proxy.echo().get(timeout=5)  # type: ignore[call-arg]  # wrong arguments
    with pytest.raises(AttributeError):
        proxy.actor_ref.ask(ProxyCall(attr_path=("missing",), args=(), kwargs={}), timeout=5)
    assert proxy.echo(42).get(timeout=5) == 42
    assert proxy.actor_ref.is_alive()


def test_exception_in_cast_is_logged_and_manager_survives(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = Recorder.start(host="h", clock=clock).proxy()
    proxy.fail.defer("cast went wrong")
    assert proxy.echo("still here").get(timeout=5) == "still here"
    records = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(records) == 1
    assert "fail()" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert "cast went wrong" in caplog.text  # the traceback is logged
    assert proxy.actor_ref.is_alive()


def test_base_exception_stops_only_that_manager(clock: ManualClock) -> None:
    victim = Recorder.start(host="h1", clock=clock).proxy()
    bystander = Recorder.start(host="h2", clock=clock).proxy()
    future = victim.die()
    queued_after = victim.echo("never")
    with pytest.raises(SystemExit):
        future.get(timeout=5)
    with pytest.raises(pykka.ActorDeadError):
        queued_after.get(timeout=5)  # never a hang for what was queued behind
    assert not victim.actor_ref.is_alive()
    assert bystander.echo("alive").get(timeout=5) == "alive"


def test_message_carrying_a_context_runs_inside_it(clock: ManualClock) -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

    class ContextReader(Manager):
        def current(self) -> str:
            return request_id.get()

    class CallInContext(ProxyCall):
        context: contextvars.Context

    ref = ContextReader.start(host="h", clock=clock)
    ctx = contextvars.copy_context()
    ctx.run(request_id.set, "req-123")
    message = CallInContext(attr_path=("current",), args=(), kwargs={})
    message.context = ctx
    assert ref.ask(message, timeout=5) == "req-123"
    assert ref.proxy().current().get(timeout=5) == "-"


def test_inbox_is_a_simple_queue() -> None:
    assert isinstance(ResilientActor._create_actor_inbox(), queue.SimpleQueue)


def test_db_is_injected_or_shared(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(f"sqlite:///{tmp_path / 'mine.sqlite3'}")
    assert Manager.start(host="h", db=db).proxy().db.get(timeout=5) is db
    monkeypatch.setenv("ACTORS_DATABASE_URL", f"sqlite:///{tmp_path / 'shared.sqlite3'}")
    first = Manager.start(host="a").proxy().db.get(timeout=5)
    second = Manager.start(host="b").proxy().db.get(timeout=5)
    assert first is second
    assert str(tmp_path / "shared.sqlite3") in first.url


def test_supervisor_hears_of_a_failure_but_not_of_a_stop(clock: ManualClock) -> None:
    heard: list[tuple[Any, BaseException | None]] = []
    told = threading.Event()

    def supervisor(actor: Any, failure: BaseException | None) -> None:
        heard.append((actor, failure))
        told.set()

    calm = Recorder.start(host="calm", clock=clock, supervisor=supervisor)
    calm.stop()
    victim = Recorder.start(host="victim", clock=clock, supervisor=supervisor)
    with pytest.raises(SystemExit):
        victim.proxy().die().get(timeout=5)
    assert told.wait(timeout=5)
    assert len(heard) == 1
    assert heard[0][0] is victim
    assert isinstance(heard[0][1], SystemExit)


def test_supervisor_hears_of_a_failing_on_start(clock: ManualClock) -> None:
    told = threading.Event()
    heard: list[BaseException | None] = []

    class BadStart(Manager):
        def on_start(self) -> None:
            raise RuntimeError("cannot start")

    def supervisor(actor: Any, failure: BaseException | None) -> None:
        heard.append(failure)
        told.set()

    ref = BadStart.start(host="h", clock=clock, supervisor=supervisor)
    assert told.wait(timeout=5)
    assert isinstance(heard[0], RuntimeError)
    assert not ref.is_alive()
