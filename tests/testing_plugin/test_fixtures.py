"""The fixtures as a user's test file sees them: manual_clock, actor_factory, cluster.

Each test writes a user's test file and runs it with pytest in this process
(``pytester.runpytest``); the plugin comes from the installed ``pytest11`` entry
point, exactly as in a user's project.
"""

from __future__ import annotations

import pykka
import pytest

# Nothing leaks here: the check returns as soon as what the tests made has stopped; the
# bound only matters on a machine so busy that stopping takes seconds.
INI = "[pytest]\nactors_leak_timeout = 10\nfilterwarnings = error\n"


@pytest.fixture
def user(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    return pytester


def test_manual_clock_moves_only_when_told(user: pytest.Pytester) -> None:
    user.makepyfile(
        """
        import datetime as dt

        from actors import ManualClock

        def test_clock(manual_clock):
            assert isinstance(manual_clock, ManualClock)
            start = manual_clock.utcnow()
            manual_clock.advance(90)
            assert manual_clock.monotonic() == 90
            assert manual_clock.utcnow() - start == dt.timedelta(seconds=90)
        """
    )
    user.runpytest().assert_outcomes(passed=1)


def test_actor_factory_injects_test_dependencies_and_stops_its_actors(
    user: pytest.Pytester,
) -> None:
    user.makepyfile(
        """
        import pykka

        from actors import ManualClock, Manager, periodic_task
        from actors.db import Database, ServiceRecord
        from actors.demo import MemoryDriver, SchedulerManager, VolumeManager
        from actors.testing import RecordingPublisher

        STARTED = []

        class BrokenDriver(MemoryDriver):
            def do_setup(self):
                raise OSError("backend unreachable")

        class Counter(Manager):
            runs = 0

            @periodic_task(spacing=5)
            def count(self, context):
                self.runs += 1

        class Plain(pykka.ThreadingActor):
            def __init__(self, greeting):
                super().__init__()
                self.greeting = greeting

            def greet(self):
                return self.greeting

        def test_volume_manager_with_test_dependencies(actor_factory):
            ref = actor_factory(VolumeManager, host="h1", driver_options={"capacity_gb": 10})
            STARTED.append(ref)
            volume = ref.proxy()
            volume.init_host().get(timeout=5)
            volume.create_volume("vol-1", 4).get(timeout=5)
            reports = actor_factory.publisher.reports
            assert [r.capabilities["free_capacity_gb"] for r in reports] == [10, 6]
            injected = actor_factory.injected(ref)
            assert injected["db"] is actor_factory.db
            assert injected["clock"] is actor_factory.clock
            assert isinstance(injected["publisher"], RecordingPublisher)
            assert actor_factory.db.url.endswith("actors.sqlite3")
            assert volume.get_volume("vol-1").get(timeout=5)["host"] == "h1"

        def test_replaced_driver_and_database(actor_factory, tmp_path):
            db = Database(f"sqlite:///{tmp_path / 'mine.sqlite3'}")
            try:
                ref = actor_factory(VolumeManager, host="h2", db=db,
                                    driver=f"{__name__}:BrokenDriver")
                STARTED.append(ref)
                volume = ref.proxy()
                volume.init_host().get(timeout=5)
                assert volume.is_working().get(timeout=5) is False
                assert actor_factory.injected(ref)["db"] is db
                assert actor_factory.publisher.reports == []
            finally:
                actor_factory.stop()
                db.dispose()

        def test_scheduler_gets_reports_through_the_recording_publisher(
            actor_factory, manual_clock
        ):
            with actor_factory.db.begin() as session:  # what heartbeats would write
                for host in ("big", "small"):
                    session.add(ServiceRecord(host=host, binary="actors-volume",
                                              topic="volume", updated_at=manual_clock.utcnow()))
            scheduler = actor_factory(SchedulerManager, host="sched").proxy()
            for host, size in (("big", 100), ("small", 10)):
                volume = actor_factory(VolumeManager, host=host,
                                       driver_options={"capacity_gb": size}).proxy()
                volume.init_host().get(timeout=5)
            assert scheduler.create_volume("vol-1", 8).get(timeout=5)["host"] == "big"
            assert len(actor_factory.publisher.wait_for(3, timeout=5)) == 3
            STARTED.extend(actor_factory.refs)

        class LocalDirectory:  # stands in for a node's Directory, recording lookups

            def __init__(self, refs):
                self.refs = refs
                self.asked = []

            def proxy(self, topic, host=None):
                self.asked.append((topic, host))
                return self.refs[host].proxy()

        def test_replaced_directory(actor_factory, manual_clock):
            with actor_factory.db.begin() as session:
                session.add(ServiceRecord(host="v1", binary="actors-volume",
                                          topic="volume", updated_at=manual_clock.utcnow()))
            volume = actor_factory(VolumeManager, host="v1")
            directory = LocalDirectory({"v1": volume})
            scheduler = actor_factory(SchedulerManager, host="s", directory=directory)
            volume.proxy().init_host().get(timeout=5)
            assert scheduler.proxy().create_volume("vol-1", 1).get(timeout=5)["host"] == "v1"
            assert directory.asked == [("volume", "v1")]
            assert actor_factory.injected(scheduler)["directory"] is directory
            STARTED.extend([volume, scheduler])

        def test_advance_runs_periodic_tasks_on_the_manual_clock(actor_factory, manual_clock):
            ref = actor_factory(Counter, host="h")
            STARTED.append(ref)
            assert actor_factory.advance(20) >= 4
            assert ref.proxy().runs.get(timeout=5) == 4
            assert manual_clock.monotonic() == 20

        def test_plain_pykka_actor_gets_only_what_it_takes(actor_factory):
            ref = actor_factory(Plain, greeting="hi")
            STARTED.append(ref)
            assert ref.proxy().greet().get(timeout=5) == "hi"
            assert actor_factory.injected(ref) == {"greeting": "hi"}

        def test_every_actor_of_the_earlier_tests_was_stopped():
            assert len(STARTED) == 9
            assert not any(ref.is_alive() for ref in STARTED)
            assert pykka.ActorRegistry.get_all() == []
        """
    )
    result = user.runpytest()
    result.assert_outcomes(passed=7)
    assert pykka.ActorRegistry.get_all() == []


def test_cluster_runs_real_nodes_over_zeromq(user: pytest.Pytester) -> None:
    user.makepyfile(
        """
        import pytest

        from actors import ServiceUnavailable
        from actors.db import ServiceRecord
        from actors.demo import NoValidBackend, SchedulerManager, VolumeManager

        def test_three_nodes_heartbeat_into_one_database(cluster, manual_clock):
            c = cluster(n=3, services=[VolumeManager])
            assert [row.host for row in c.directory.services("volume", up_only=True)] == [
                "node-1", "node-2", "node-3"]
            endpoints = {node.bridge.endpoint for node in c.nodes.values()}
            assert len(endpoints) == 3
            assert all(e.startswith("tcp://127.0.0.1:") for e in endpoints)
            before = {row.host: row.report_count for row in c.directory.services("volume")}
            c.advance(30)
            after = {row.host: row.report_count for row in c.directory.services("volume")}
            assert {host: after[host] - before[host] for host in after} == {
                "node-1": 3, "node-2": 3, "node-3": 3}
            assert c.proxy("volume", host="node-2").create_volume(
                "vol-1", 1).get(timeout=10)["host"] == "node-2"

        def test_scheduler_places_volumes_across_nodes(cluster):
            c = cluster(allowed_exception_modules=["actors.demo.errors"])
            c.add_node("sched", [SchedulerManager])
            c.add_node("v1", [(VolumeManager, {"driver_options": {"capacity_gb": 10}})])
            c.add_node("v2", [(VolumeManager, {"driver_options": {"capacity_gb": 100}})])
            scheduler = c.proxy("scheduler")
            assert scheduler.create_volume("vol-1", 50).get(timeout=10)["host"] == "v2"
            assert c.proxy("volume", host="v2").get_volume("vol-1").get(timeout=10)["size_gb"] == 50
            with pytest.raises(NoValidBackend):
                scheduler.create_volume("vol-2", 500).get(timeout=10)

        def test_a_stopped_node_goes_down(cluster):
            c = cluster(n=2, services=[VolumeManager], service_down_time=25)
            c.stop_node("node-2")
            assert [row.host for row in c.directory.services("volume", up_only=True)] == ["node-1"]
            c.advance(30)
            assert [row.host for row in c.directory.services("volume", up_only=True)] == ["node-1"]
            with pytest.raises(ServiceUnavailable):
                c.proxy("volume", host="node-2")
        """
    )
    result = user.runpytest()
    result.assert_outcomes(passed=3)
    assert pykka.ActorRegistry.get_all() == []
