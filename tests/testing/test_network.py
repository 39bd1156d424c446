"""Hosts, the simulated bridge, faults and services under the simulator."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

import transport
from actors import Manager
from actors._clock import DEFAULT_CLOCK
from actors.db import ServiceRecord, select
from actors.testing import Simulation, SimulationEscape
from actors.testing._network import Faults


class Overdrawn(Exception):
    pass


class Bank(Manager):
    TOPIC = "bank"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.balance = 100

    def withdraw(self, amount: int) -> int:
        if amount > self.balance:
            raise Overdrawn(f"only {self.balance} left")
        self.balance -= amount
        return self.balance

    def unencodable(self) -> Any:
        return {1, 2}

    def die(self) -> None:
        raise SystemExit("a BaseException stops the manager")


class Escaper(Manager):
    def start_thread(self) -> None:
        threading.Thread(target=lambda: None).start()

    def nap(self) -> None:
        time.sleep(0.01)

    def wall_clock(self) -> float:
        return DEFAULT_CLOCK.monotonic()

    def open_socket(self) -> None:
        socket.socket().close()


def _bank(sim: Simulation, attempts: int = 1) -> Any:
    sim.service(Bank, host="h2")
    sim.advance(10)  # the first heartbeat makes it discoverable
    for _ in range(attempts - 1):  # with faults on, the describe round trip may be lost
        try:
            return sim.directory("h1").proxy("bank", host="h2")
        except transport.MessagingTimeout:
            continue
    return sim.directory("h1").proxy("bank", host="h2")


def test_remote_calls_use_the_real_codec_and_error_mapping() -> None:
    with Simulation(seed=1) as sim:
        bank = _bank(sim)
        assert bank.withdraw(10).get() == 90
        with pytest.raises(transport.RemoteError, match="only 90 left"):
            bank.withdraw(1000).get()
        with pytest.raises(transport.NoSuchMethod):
            bank.nope().get()
        with pytest.raises(transport.NoSuchMethod):
            bank.init_host().get()  # RPC_PRIVATE
        with pytest.raises(TypeError, match="cannot encode"):
            bank.unencodable().get()
        with pytest.raises(TypeError, match="cannot encode"):
            bank.withdraw({1})  # refused before it leaves, as the real client does
        conn = sim.directory("h1")._connection("sim://h2")
        with pytest.raises(transport.UnknownActor):  # its describe is refused, as for real
            conn.proxy("nobody")
        unknown = conn.proxy("nobody", check=False)  # unchecked: the call is refused
        with pytest.raises(transport.UnknownActor):
            unknown.withdraw(1).get()


def test_allowed_exception_modules_come_back_as_themselves() -> None:
    with Simulation(seed=1) as sim:
        sim.service(Bank, host="h2")
        sim.advance(10)
        directory = sim.directory("h3", allowed_exception_modules=[__name__])
        with pytest.raises(Overdrawn, match="only 100 left"):
            directory.proxy("bank", host="h2").withdraw(1000).get()


def test_a_partition_times_calls_out_and_a_heal_lets_them_through() -> None:
    with Simulation(seed=2) as sim:
        bank = _bank(sim)
        sim.partition("h1", "h2")
        before = sim.now
        with pytest.raises(transport.MessagingTimeout):
            bank.withdraw(1).get()
        assert sim.now == pytest.approx(before + 60)  # the directory's call deadline
        sim.heal()
        assert bank.withdraw(1).get() == 99  # at-most-once: the lost one never ran


def test_crash_stops_heartbeats_and_restart_reruns_the_start_order() -> None:
    with Simulation(seed=3) as sim:
        bank = _bank(sim)
        assert bank.withdraw(5).get() == 95
        directory = sim.directory("h1")
        sim.crash("h2")
        sim.advance(120)
        assert [directory.is_up(row) for row in directory.services("bank")] == [False]
        with pytest.raises(Exception, match="no 'bank' service is up"):
            directory.proxy("bank", host="h2")
        sim.restart("h2")
        sim.advance(10)
        assert [directory.is_up(row) for row in directory.services("bank")] == [True]
        assert directory.proxy("bank", host="h2").withdraw(5).get() == 95  # a fresh manager


def test_heartbeats_and_round_robin_on_virtual_time() -> None:
    with Simulation(seed=4) as sim:
        for host in ("h1", "h2", "h3"):
            sim.service(Bank, host=host)
        sim.advance(600)
        directory = sim.directory("client")
        rows = directory.services("bank")
        assert [r.report_count for r in rows] == [60, 60, 60]
        hit = [directory.proxy("bank").withdraw(1).get() for _ in range(6)]
        assert hit == [99, 99, 99, 98, 98, 98]


def test_a_service_restarts_its_dead_manager_after_its_back_off() -> None:
    with Simulation(seed=7) as sim:
        svc = sim.service(Bank, host="h2")
        sim.advance(10)
        bank = sim.directory("h1").proxy("bank", host="h2")
        assert bank.withdraw(30).get() == 70
        died_at = sim.now
        with pytest.raises(transport.RemoteError, match="SystemExit"):
            bank.die().get()
        with pytest.raises(transport.UnknownActor):
            bank.withdraw(1).get()  # meanwhile: refused at once, never a hang
        sim.run()
        assert svc.restarts == 1
        assert sim.now == pytest.approx(died_at + 1.0)  # restart_backoff[0]
        assert bank.withdraw(1).get() == 99  # a fresh manager


class Recorder(Manager):
    def remember(self, host: str) -> int:
        with self.db.begin() as session:
            session.add(ServiceRecord(host=host, binary="b", topic="t", report_count=0))
        with self.db.session() as session:
            return len(session.scalars(select(ServiceRecord)).all())


def test_a_started_manager_uses_the_simulations_database() -> None:
    with Simulation(seed=8) as sim:
        recorder = sim.start(Recorder, host="h1").proxy()
        assert recorder.remember("x").get() == 1
        with sim.db.session() as session:
            assert [r.host for r in session.scalars(select(ServiceRecord))] == ["x"]


def test_fanout_casts_reach_every_up_service() -> None:
    with Simulation(seed=6) as sim:
        for host in ("h1", "h2", "h3"):
            sim.service(Bank, host=host)
        sim.advance(10)
        sim.crash("h3")
        sim.advance(61)  # h3 is down now: the fan-out skips it
        directory = sim.directory("client")
        assert directory.fanout_cast("bank", "withdraw", 7) == 2
        sim.run()
        balances = [ref.proxy().balance.get() for ref in sim.actors() if ref.is_alive()]
        assert balances == [93, 93]


def test_faults_are_choices_and_delivery_stays_at_most_once() -> None:
    outcomes = set()
    for seed in range(25):
        with Simulation(seed=seed, faults=Faults(drop_request=20, drop_reply=20, node=0)) as sim:
            bank = _bank(sim, attempts=10)
            results = []
            for _ in range(3):
                try:
                    results.append(bank.withdraw(10).get())
                except transport.MessagingTimeout:
                    results.append("timeout")
            balance = sim.actors("h2")[0].proxy().balance.get()
        ran = 100 - balance
        assert ran % 10 == 0  # never twice
        assert ran <= 30
        outcomes.add(("timeout" in results, ran))
        if "timeout" in sim.trace.lines[-1]:
            pass
    assert any(timeout for timeout, _ in outcomes)
    assert len(outcomes) > 2


@pytest.mark.parametrize(
    ("method", "what"),
    [
        ("start_thread", "a thread"),
        ("nap", "time.sleep"),
        ("wall_clock", "the wall clock"),
        ("open_socket", "a real socket"),
    ],
)
def test_escapes_fail_loudly_naming_what_escaped(method: str, what: str) -> None:
    with Simulation(seed=5) as sim:
        proxy = sim.start(Escaper, host="h1").proxy()
        getattr(proxy, method).defer()
        with pytest.raises(SimulationEscape, match=what) as info:
            sim.run()
        assert f"h1/Escaper handling {method}()" in str(info.value)
    threading.Thread(target=lambda: None).start()  # and nothing stays patched
    time.sleep(0)
