"""A test that leaves an actor, a thread, a socket or a file behind fails, naming it.

The user's test files leak on purpose and park what they leaked in `_shared`,
so each test here releases it afterwards and leaves the process clean.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

import pykka
import pytest

import transport
from actors.testing import LeakCheck, LeakError
from tests.testing_plugin import _shared

if TYPE_CHECKING:
    from collections.abc import Iterator

INI = "[pytest]\nactors_leak_timeout = 0.3\n"  # what leaks on purpose is waited for this long


@pytest.fixture
def user(pytester: pytest.Pytester) -> Iterator[pytest.Pytester]:
    pytester.makeini(INI)
    try:
        yield pytester
    finally:
        _shared.release_all()


def test_a_leaked_actor_fails_the_test_naming_it(user: pytest.Pytester) -> None:
    user.makepyfile(
        """
        import pykka

        class Forgotten(pykka.ThreadingActor):
            pass

        def test_leaks_an_actor(actor_factory):
            actor_factory(Forgotten)  # the factory stops this one
            Forgotten.start()         # nobody stops this one
        """
    )
    result = user.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_an_actor*",
            "*LeakError: 2 resource(s) leaked*",
            "*actor Forgotten (urn:uuid:*)",
            "*thread 'Forgotten-*'",
        ]
    )
    assert pykka.ActorRegistry.get_all() == []  # the check stopped it after naming it


def test_a_leaked_thread_fails_the_test_naming_it(user: pytest.Pytester) -> None:
    user.makepyfile(
        """
        import threading

        from tests.testing_plugin import _shared

        def test_leaks_a_thread(leak_check):
            threading.Thread(target=_shared.RELEASE.wait, args=(30,),
                             name="forgotten-worker").start()
        """
    )
    result = user.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*1 resource(s) leaked (still there after waiting 0.3 s for them to stop)*",
            "*thread 'forgotten-worker'",
        ]
    )


def test_a_leaked_zeromq_connection_fails_the_test_naming_it(user: pytest.Pytester) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        user.makepyfile(
            f"""
            import transport

            from tests.testing_plugin import _shared

            def test_leaks_a_connection(leak_check):
                _shared.HELD.append(transport.connect("tcp://127.0.0.1:{port}"))
            """
        )
        result = user.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*resource(s) leaked*",
            f"*zmq socket <zmq.Socket(zmq.DEALER)*held by <transport.Connection "
            f"tcp://127.0.0.1:{port}>",
        ]
    )
    # its TCP connection is named too (the descriptor table of /proc says where it goes)
    result.stdout.fnmatch_lines([f"*fd *: socket:[[]*[]] tcp 127.0.0.1:* -> 127.0.0.1:{port}"])


def test_a_leaked_file_fails_the_test_naming_it(user: pytest.Pytester) -> None:
    user.makepyfile(
        """
        from tests.testing_plugin import _shared

        def test_leaks_a_file(leak_check, tmp_path):
            _shared.HELD.append(open(tmp_path / "forgotten.txt", "w"))
        """
    )
    result = user.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*1 resource(s) leaked*", "*fd *: /*/forgotten.txt"])


def test_a_cluster_left_running_by_hand_is_named(user: pytest.Pytester) -> None:
    """A node started outside the fixture leaks its bridge, timer, manager and sockets."""
    user.makepyfile(
        """
        from actors.demo import VolumeManager
        from actors.testing import Cluster
        from tests.testing_plugin import _shared

        def test_leaks_a_node(cluster, tmp_path):
            cluster(n=1, services=[VolumeManager])  # stopped by the fixture
            mine = Cluster(tmp_path, clock=cluster(n=0).clock)
            mine.add_node("forgotten-node", [VolumeManager])
            _shared.HELD.append(mine)
        """
    )
    result = user.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*actor TimerActor (urn:uuid:*)",
            "*actor VolumeManager (urn:uuid:*)",
            "*thread 'TimerActor-*'",
            "*thread 'VolumeManager-*'",
            "*thread 'transport-bridge-tcp://127.0.0.1:*' (daemon)",
            "*zmq socket <zmq.Socket(zmq.ROUTER)*held by <transport._bridge.Bridge object*>",
            "*fd *: /*/test_leaks_a_node0/cluster.sqlite3",
        ]
    )


def test_the_allow_leaks_marker_turns_the_check_off(user: pytest.Pytester) -> None:
    user.makepyfile(
        """
        import threading

        import pytest

        from tests.testing_plugin import _shared

        @pytest.mark.actors_allow_leaks
        def test_leaks_on_purpose(leak_check):
            threading.Thread(target=_shared.RELEASE.wait, args=(30,),
                             name="forgotten-allowed").start()
        """
    )
    user.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_threads_named_in_the_ini_are_never_leaks(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI + "actors_leak_ignore_threads =\n    forgotten-ignored\n")
    pytester.makepyfile(
        """
        import threading

        from tests.testing_plugin import _shared

        def test_leaks_an_ignored_thread(leak_check):
            threading.Thread(target=_shared.RELEASE.wait, args=(30,),
                             name="forgotten-ignored").start()
        """
    )
    try:
        pytester.runpytest().assert_outcomes(passed=1)
    finally:
        _shared.release_all()


def test_a_clean_test_passes_with_every_fixture(user: pytest.Pytester) -> None:
    user.makeini("[pytest]\nactors_leak_timeout = 10\nfilterwarnings = error\n")
    user.makepyfile(
        """
        import transport
        from actors.demo import VolumeManager

        def test_clean(leak_check, actor_factory, cluster, tmp_path):
            actor_factory(VolumeManager, host="h1").proxy().init_host().get(timeout=5)
            c = cluster(n=1, services=[VolumeManager])
            assert c.proxy("volume", host="node-1").list_volumes().get(timeout=10) == []
            with transport.connect(c.node("node-1").bridge.endpoint, timeout=5):
                pass
            with open(tmp_path / "closed.txt", "w") as f:
                f.write("x")
        """
    )
    user.runpytest().assert_outcomes(passed=1)


# -- LeakCheck itself, without pytest in between ----------------------------------


def test_an_actor_that_stops_in_time_is_no_leak() -> None:
    check = LeakCheck(timeout=5)
    refs = [pykka.ThreadingActor.start() for _ in range(5)]
    for ref in refs:
        ref.stop(block=False)  # their threads end after the check has started waiting
    check.check()


def test_a_thread_ending_within_the_timeout_is_no_leak() -> None:
    go = threading.Event()
    check = LeakCheck(timeout=5)
    thread = threading.Thread(target=go.wait, args=(5,), name="short-lived")
    thread.start()
    threading.Timer(0.05, go.set).start()  # the thread ends while the check waits
    check.check()
    assert not thread.is_alive()


def test_leaks_made_before_the_snapshot_are_not_reported() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, args=(10,), name="older-than-the-check")
    thread.start()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        conn = transport.connect(f"tcp://127.0.0.1:{listener.getsockname()[1]}", timeout=1)
        ref = pykka.ThreadingActor.start()
        try:
            with LeakCheck(timeout=0.2) as check:
                pass
            assert check.leaks() == []
        finally:
            conn.close(linger=0)
            ref.stop()
            stop.set()
            thread.join(10)


def test_ignored_threads_are_not_leaks() -> None:
    stop = threading.Event()
    check = LeakCheck(timeout=0.1, ignore_threads=["background-ok"])
    thread = threading.Thread(target=stop.wait, args=(10,), name="background-ok")
    thread.start()
    try:
        check.check()
    finally:
        stop.set()
        thread.join(10)


def test_the_error_lists_each_leak_on_its_own_line() -> None:
    stop = threading.Event()
    check = LeakCheck(timeout=0.1)
    threads = [
        threading.Thread(target=stop.wait, args=(10,), name=f"forgotten-{i}") for i in range(2)
    ]
    for thread in threads:
        thread.start()
    try:
        with pytest.raises(LeakError) as caught:
            check.check()
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert caught.value.leaks == ["thread 'forgotten-0'", "thread 'forgotten-1'"]
    assert str(caught.value).splitlines()[1:] == [
        "  thread 'forgotten-0'",
        "  thread 'forgotten-1'",
    ]
