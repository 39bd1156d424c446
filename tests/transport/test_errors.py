"""Refusals of the bridge and remote errors, as the caller sees them (server in a process)."""

from __future__ import annotations

import pykka
import pytest

import transport
from tests.transport._actors import CustomError

TIMEOUT = 10.0


def test_call_returns_value(conn: transport.Connection) -> None:
    echo = conn.proxy("echo")
    assert echo.add(2, 3).get(timeout=TIMEOUT) == 5
    assert echo.describe(1, (2, 3), key=[4]).get(timeout=TIMEOUT) == [(1, (2, 3)), {"key": [4]}]


def test_unknown_actor(conn: transport.Connection) -> None:
    with pytest.raises(transport.UnknownActor, match="nobody"):
        conn.proxy("nobody").add(1, 2).get(timeout=TIMEOUT)


@pytest.mark.parametrize(
    "name",
    [
        "missing",  # no such attribute
        "_private",  # leading underscore
        "__init__",
        "_handle_receive",
        "stop",  # pykka internals
        "on_receive",
        "on_start",
        "on_failure",
        "start",
        "init_host",  # the Manager's RPC_PRIVATE
        "reset",
        "run_periodic_tasks",
        "lifecycle_only",  # the class's own RPC_PRIVATE, added to the Manager's
        "not_a_method",  # not callable
        "a_property",
    ],
)
def test_no_such_method(conn: transport.Connection, name: str) -> None:
    # Below the proxy (which keeps dunders local), straight onto the wire:
    future = conn._call("echo", name, (), {}, None, None)
    with pytest.raises(transport.NoSuchMethod):
        future.get(timeout=TIMEOUT)


def test_no_such_method_is_an_attribute_error(conn: transport.Connection) -> None:
    with pytest.raises(AttributeError):
        conn.proxy("echo").missing().get(timeout=TIMEOUT)


@pytest.mark.parametrize("version", ["1.0", "1.3", "1"])
def test_compatible_versions_are_served(conn: transport.Connection, version: str) -> None:
    assert conn.proxy("echo", version).add(1, 1).get(timeout=TIMEOUT) == 2


@pytest.mark.parametrize("version", ["1.4", "2.0", "0.9", "bogus"])
def test_unsupported_version(conn: transport.Connection, version: str) -> None:
    with pytest.raises(transport.UnsupportedVersion, match=r"1\.3"):
        conn.proxy("echo", version).add(1, 1).get(timeout=TIMEOUT)


def test_default_version_is_one_zero(conn: transport.Connection) -> None:
    # Recorder has no RPC_API_VERSION: it serves 1.0 and below, nothing else.
    assert conn.proxy("rec0", "1.0").entries("nobody").get(timeout=TIMEOUT) == []
    with pytest.raises(transport.UnsupportedVersion):
        conn.proxy("rec0", "1.1").entries("nobody").get(timeout=TIMEOUT)


def test_refusals_come_at_once_even_when_the_actor_is_busy(
    conn: transport.Connection, server_endpoint: str
) -> None:
    busy = conn.proxy("slow").pause(1.5)
    with pytest.raises(transport.NoSuchMethod):
        conn.proxy("slow").stop().get(timeout=1.0)
    with pytest.raises(transport.UnsupportedVersion):
        conn.proxy("slow", "7.0").pause(0).get(timeout=1.0)
    assert busy.get(timeout=TIMEOUT) == 1.5


@pytest.mark.parametrize(
    ("name", "args", "cls"),
    [
        ("ValueError", ("bad value",), ValueError),
        ("KeyError", ("k",), KeyError),
        ("FileNotFoundError", (2, "No such file"), FileNotFoundError),
        ("ZeroDivisionError", ("x",), ZeroDivisionError),
    ],
)
def test_builtin_exceptions_come_back_as_themselves(
    conn: transport.Connection, name: str, args: tuple[object, ...], cls: type[Exception]
) -> None:
    with pytest.raises(cls) as info:
        conn.proxy("echo").fail(name, *args).get(timeout=TIMEOUT)
    assert type(info.value) is cls
    assert info.value.args == args
    notes = getattr(info.value, "__notes__", [])
    assert notes
    assert "Remote traceback" in notes[0]
    assert "in fail" in notes[0]


def test_other_exceptions_become_remote_error(conn: transport.Connection) -> None:
    with pytest.raises(transport.RemoteError) as info:
        conn.proxy("echo").fail_custom("custom trouble").get(timeout=TIMEOUT)
    err = info.value
    assert err.exc_type == "tests.transport._actors.CustomError"
    assert err.value == "custom trouble"
    assert "fail_custom" in err.traceback
    assert "custom trouble" in str(err)
    assert isinstance(err, transport.MessagingError)


def test_allow_listed_module_exceptions_come_back_as_themselves(server_endpoint: str) -> None:
    with transport.connect(
        server_endpoint, timeout=TIMEOUT, allowed_exception_modules=["tests.transport._actors"]
    ) as allowed:
        with pytest.raises(CustomError, match="custom trouble") as info:
            allowed.proxy("echo").fail_custom("custom trouble").get(timeout=TIMEOUT)
        assert type(info.value) is CustomError
        assert "fail_custom" in info.value.__notes__[0]


def test_unencodable_result_is_a_remote_type_error(conn: transport.Connection) -> None:
    with pytest.raises(TypeError, match=r"result\['ok'\]\[1\]: cannot encode <class 'set'>"):
        conn.proxy("echo").unencodable().get(timeout=TIMEOUT)


def test_unencodable_argument_fails_before_sending(conn: transport.Connection) -> None:
    echo = conn.proxy("echo")
    with pytest.raises(TypeError, match=r"^args\[0\]\['x'\]\[0\]: cannot encode <class 'set'>"):
        echo.echo({"x": [set()]})
    with pytest.raises(TypeError, match=r"^kwargs\['value'\]: cannot encode"):
        echo.echo.defer(value=object())
    assert echo.add(1, 2).get(timeout=TIMEOUT) == 3


def test_oversized_request_refused_before_sending(server_endpoint: str) -> None:
    with transport.connect(server_endpoint, timeout=TIMEOUT, max_message_size=1000) as small:
        with pytest.raises(transport.MessageTooLarge):
            small.proxy("echo").echo(b"x" * 2000)
        with pytest.raises(transport.MessageTooLarge):
            small.proxy("echo").echo.defer(b"x" * 2000)
        assert small.proxy("echo").echo(b"x" * 10).get(timeout=TIMEOUT) == b"x" * 10


def test_oversized_reply_is_refused_by_the_bridge(conn: transport.Connection) -> None:
    # The shared server runs with --max-message-size 1000000.
    with pytest.raises(transport.MessageTooLarge):
        conn.proxy("echo").big(2_000_000).get(timeout=TIMEOUT)
    assert len(conn.proxy("echo").big(500_000).get(timeout=TIMEOUT)) == 500_000


def test_message_over_the_servers_limit_is_not_read(server_endpoint: str) -> None:
    # The client allows more than the server: ZeroMQ drops the connection
    # (MAXMSGSIZE), the call times out, and the connection reconnects.
    with transport.connect(server_endpoint, timeout=1.0, max_message_size=10**8) as big:
        with pytest.raises(transport.MessagingTimeout):
            big.proxy("echo").echo(b"x" * 2_000_000).get()
        assert big.proxy("echo", timeout=TIMEOUT).add(1, 2).get(timeout=TIMEOUT) == 3


def test_messaging_timeout_is_a_pykka_timeout() -> None:
    assert issubclass(transport.MessagingTimeout, pykka.Timeout)
    assert issubclass(transport.MessagingTimeout, transport.MessagingError)
