"""pykka's documented proxy behaviour, case by case, on a remote proxy beside a local one.

Each test runs twice: on a local `ref.proxy()` of a `Fields` actor, and on a
remote proxy of the same class served by a bridge. The deliberate differences
(docs/proxies.rst, "Differences from a local proxy") are asserted at the end.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pykka
import pytest

import transport
from tests.transport._actors import EVENT, Fields

if TYPE_CHECKING:
    from collections.abc import Iterator

TIMEOUT = 10.0


@pytest.fixture(params=["local", "remote"])
def proxy(request: pytest.FixtureRequest, local_conn: transport.Connection) -> Iterator[Any]:
    """A proxy of a fresh `Fields` actor: local, or remote through the bridge."""
    EVENT.clear()
    if request.param == "local":
        ref = Fields.start()
        try:
            yield ref.proxy()
        finally:
            ref.stop()
    else:
        yield local_conn.proxy("fields")


# -- attributes and properties ---------------------------------------------------------


def test_reading_a_field_gives_a_future_of_its_value(proxy: Any) -> None:
    future = proxy.count
    assert isinstance(future, pykka.Future)
    assert future.get(timeout=TIMEOUT) == 0
    assert proxy.label.get(timeout=TIMEOUT) == "fields"  # a class attribute


def test_setting_a_field_blocks_until_set_in_the_actor(proxy: Any) -> None:
    proxy.count = 41
    assert proxy.bump().get(timeout=TIMEOUT) == 42  # the actor's own code sees it
    assert proxy.count.get(timeout=TIMEOUT) == 42


def test_properties_are_read_and_set_inside_the_actor(proxy: Any) -> None:
    proxy.count = 5
    assert proxy.doubled.get(timeout=TIMEOUT) == 10
    proxy.level = 3
    assert proxy.level.get(timeout=TIMEOUT) == 3


def test_a_setter_that_raises_raises_at_the_assignment(proxy: Any) -> None:
    with pytest.raises(ValueError, match="level must be >= 0"):
        proxy.level = -1
    assert proxy.level.get(timeout=TIMEOUT) == 1


def test_assigning_a_read_only_property_raises_attribute_error(proxy: Any) -> None:
    with pytest.raises(AttributeError, match="has no setter"):
        proxy.doubled = 3


# -- methods -----------------------------------------------------------------------------


def test_a_method_call_returns_a_future_of_its_result(proxy: Any) -> None:
    future = proxy.bump(by=2)
    assert isinstance(future, pykka.Future)
    assert future.get(timeout=TIMEOUT) == 2


def test_static_methods_are_called(proxy: Any) -> None:
    assert proxy.twice(21).get(timeout=TIMEOUT) == 42


def test_defer_is_a_cast_applied_in_order(proxy: Any) -> None:
    assert proxy.bump.defer() is None
    proxy.bump.defer(by=10)
    assert proxy.count.get(timeout=TIMEOUT) == 11


def test_a_method_that_raises_gives_the_exception_at_get(proxy: Any) -> None:
    future = proxy.items("three")
    with pytest.raises(TypeError):
        future.get(timeout=TIMEOUT)


def test_an_attribute_added_at_run_time_is_found(proxy: Any) -> None:
    proxy.add_field("added", 7).get(timeout=TIMEOUT)  # pykka introspects again on a miss
    assert proxy.added.get(timeout=TIMEOUT) == 7
    assert "added" in dir(proxy)


# -- unknown and private names -------------------------------------------------------


def test_an_unknown_name_raises_attribute_error_at_access(proxy: Any) -> None:
    with pytest.raises(AttributeError):
        proxy.no_such_thing  # noqa: B018
    with pytest.raises(AttributeError):
        proxy.no_such_thing.defer()  # a cast to it fails too, at access


def test_private_names_are_not_exposed(proxy: Any) -> None:
    with pytest.raises(AttributeError):
        proxy._secret  # noqa: B018
    with pytest.raises(AttributeError):
        proxy._level  # noqa: B018


def test_dir_lists_methods_and_attributes(proxy: Any) -> None:
    names = set(dir(proxy))
    assert {"bump", "items", "count", "doubled", "level", "label"} <= names
    assert "_secret" not in names


# -- futures: pykka's combinators and zero timeouts ------------------------------------


def test_future_combinators(proxy: Any) -> None:
    assert proxy.items(5).map(len).get(timeout=TIMEOUT) == 5
    assert list(proxy.items(6).filter(lambda x: x % 2).get(timeout=TIMEOUT)) == [1, 3, 5]
    assert proxy.items(4).reduce(lambda a, b: a + b).get(timeout=TIMEOUT) == 6
    assert proxy.items(0).reduce(lambda a, b: a + b, 9).get(timeout=TIMEOUT) == 9
    first, second = proxy.bump(), proxy.bump()
    assert list(first.join(second).get(timeout=TIMEOUT)) == [1, 2]
    assert list(pykka.get_all([proxy.count, proxy.doubled], timeout=TIMEOUT)) == [2, 4]


def test_zero_timeouts_read_arrived_results(proxy: Any) -> None:
    futures = [proxy.bump() for _ in range(3)]
    assert futures[-1].get(timeout=TIMEOUT) == 3  # mailbox order: the others are done too
    assert futures[0].get(timeout=0) == 1
    assert list(pykka.get_all(futures, timeout=0)) == [1, 2, 3]
    assert futures[0].map(lambda v: v * 10).get(timeout=0) == 10
    assert list(futures[0].join(futures[1]).get(timeout=0)) == [1, 2]


def test_set_get_hook_on_a_resolved_future_raises_queue_full(proxy: Any) -> None:
    import queue  # noqa: PLC0415

    future = proxy.bump()
    future.get(timeout=TIMEOUT)
    with pytest.raises(queue.Full):
        future.set_get_hook(lambda timeout: 0)


def test_a_pending_call_times_out_with_pykka_timeout(proxy: Any) -> None:
    future = proxy.wait_event(TIMEOUT)
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0)
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0.05)
    EVENT.set()
    assert future.get(timeout=TIMEOUT) is True


# -- the deliberate differences (docs/proxies.rst), asserted -----------------------------


def test_difference_pykka_names_are_refused_remotely(
    local_conn: transport.Connection,
) -> None:
    ref = Fields.start()
    try:
        assert callable(ref.proxy().stop)  # local: pykka's own methods are proxied
    finally:
        ref.stop()
    remote = local_conn.proxy("fields")
    for name in ("stop", "on_receive", "on_start", "actor_ref", "actor_urn", "init_host", "db"):
        with pytest.raises(transport.NoSuchMethod):
            getattr(remote, name)


def test_difference_setting_a_new_name_is_refused_remotely(
    local_conn: transport.Connection,
) -> None:
    ref = Fields.start()
    try:
        local = ref.proxy()
        local.brand_new = 1  # pykka creates it on the actor
        assert local.brand_new.get(timeout=TIMEOUT) == 1  # type: ignore[misc]  # not on Fields
    finally:
        ref.stop()
    remote = local_conn.proxy("fields")
    with pytest.raises(transport.NoSuchMethod):
        remote.brand_new = 1
    with pytest.raises(AttributeError):
        remote.bump = 1  # a method cannot be replaced either
    assert remote.host.get(timeout=TIMEOUT) == "transport-test"
    with pytest.raises(transport.NoSuchMethod):
        remote.host = "elsewhere"  # a manager's identity is RPC_READ_ONLY


def test_difference_callable_instance_attributes_are_not_methods_remotely(
    local_conn: transport.Connection,
) -> None:
    ref = Fields.start()
    try:
        assert ref.proxy().handler("abc").get(timeout=TIMEOUT) == 3  # local: called
    finally:
        ref.stop()
    remote = local_conn.proxy("fields")
    future = remote.handler  # remote: an attribute (not on the class): a read...
    with pytest.raises(TypeError, match="cannot encode"):
        future.get(timeout=TIMEOUT)  # ...of a value that cannot cross the wire


def test_difference_traversable_attributes_are_not_traversed_remotely(
    local_conn: transport.Connection,
) -> None:
    ref = Fields.start()
    try:
        nested: Any = ref.proxy().nested  # traversable: a proxy (the mypy plugin says future)
        assert nested.ping().get(timeout=TIMEOUT) == "nested pong"
    finally:
        ref.stop()
    remote = local_conn.proxy("fields")
    assert isinstance(remote.nested, transport.RemoteFuture)  # a read, not a sub-proxy


def test_difference_class_methods_are_methods_remotely(local_conn: transport.Connection) -> None:
    ref = Fields.start()
    try:
        local = ref.proxy()
        assert isinstance(local.class_label, pykka.Future)  # pykka: not callable in __dict__
        assert local.class_label.get(timeout=TIMEOUT)() == "fields"
    finally:
        ref.stop()
    assert local_conn.proxy("fields").class_label().get(timeout=TIMEOUT) == "fields"


def test_difference_values_are_copies(local_conn: transport.Connection) -> None:
    remote = local_conn.proxy("fields")
    items = remote.items(3).get(timeout=TIMEOUT)
    items.append(99)
    assert remote.items(3).get(timeout=TIMEOUT) == [0, 1, 2]
    with pytest.raises(TypeError, match="cannot encode"):
        remote.add_field("s", {1, 2})  # what msgpack cannot carry is refused at the sender


def test_difference_repr_names_class_actor_and_endpoint(local_conn: transport.Connection) -> None:
    remote = local_conn.proxy("fields")
    assert repr(remote) == f"<RemoteProxy Fields 'fields' at {local_conn.endpoint}>"
    assert remote == local_conn.proxy("fields")
    assert remote != local_conn.proxy("echo")


# -- remote only ---------------------------------------------------------------------------


def test_a_proxy_of_a_busy_actor_is_made_at_once(local_bridge: transport.Bridge) -> None:
    with transport.connect(local_bridge.endpoint, timeout=TIMEOUT) as first:
        busy = first.proxy("fields").wait_event(TIMEOUT)  # the actor is busy until EVENT
        with transport.connect(local_bridge.endpoint, timeout=1.0) as second:
            proxy = second.proxy("fields")  # described by the bridge, not in the mailbox
            assert "bump" in dir(proxy)
            assert not busy.done()
        EVENT.set()
        assert busy.get(timeout=TIMEOUT) is True


def test_describe_is_cached_per_connection(local_conn: transport.Connection) -> None:
    first = local_conn.describe("fields")
    assert local_conn.describe("fields") is first
    assert local_conn.proxy("fields")._transport_description is first
    assert first.class_name == "Fields"
    assert first.module == "tests.transport._actors"
    assert {"bump", "items", "twice", "class_label"} <= first.methods
    assert {"count", "label", "doubled", "level", "nested", "handler"} <= first.attributes
    assert not {"stop", "_secret", "db", "RPC_PRIVATE", "init_host"} & (
        first.methods | first.attributes
    )


def test_difference_an_unchecked_proxy_makes_no_round_trip_and_only_calls(
    local_conn: transport.Connection,
) -> None:
    ghost = local_conn.proxy("nobody", check=False)  # no describe: nothing raised here
    assert "(unchecked)" in repr(ghost)
    with pytest.raises(pykka.ActorDeadError):
        ghost.anything().get(timeout=TIMEOUT)  # the bridge refuses at the call
    fields = local_conn.proxy("fields", check=False)
    assert fields.bump().get(timeout=TIMEOUT) == 1
    with pytest.raises(transport.NoSuchMethod):
        fields.count().get(timeout=TIMEOUT)  # any name is taken for a method
    with pytest.raises(AttributeError, match="unchecked"):
        fields.count = 3


def test_difference_awaiting_a_combinator_runs_its_get_off_the_loop(proxy: Any) -> None:
    async def main() -> tuple[int, list[int]]:
        doubled = await proxy.items(4).map(len)
        joined = await proxy.bump().join(proxy.bump())
        return doubled, list(joined)

    assert asyncio.run(main()) == (4, [1, 2])
