"""CURVE: encryption and the client-key allow-list."""

from __future__ import annotations

import selectors
import shutil
import socket
import threading
from typing import TYPE_CHECKING

import pytest

import transport
from tests.transport._actors import Echo

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.transport.conftest import ServerProcess

MARKER = "PAYLOAD-MARKER-7f3a9c"


class Relay:
    """A loopback TCP relay that records every byte it forwards (both directions)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.captured = bytearray()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._listener:
                        client, _ = self._listener.accept()
                        upstream = socket.create_connection(("127.0.0.1", self.target_port), 5)
                        peers[client], peers[upstream] = upstream, client
                        sel.register(client, selectors.EVENT_READ)
                        sel.register(upstream, selectors.EVENT_READ)
                        continue
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        other = peers.pop(sock)
                        peers.pop(other, None)
                        for s in (sock, other):
                            sel.unregister(s)
                            s.close()
                        continue
                    self.captured += data
                    peers[sock].sendall(data)
        finally:
            for s in peers:
                s.close()
            sel.close()
            self._listener.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def curve_dir(tmp_path: Path) -> Path:
    transport.write_keypair(tmp_path, "server")
    transport.write_keypair(tmp_path / "clients", "good")
    (tmp_path / "allowed").mkdir()
    shutil.copy(tmp_path / "clients" / "good.key", tmp_path / "allowed" / "good.key")
    return tmp_path


@pytest.fixture
def secure_server(
    spawn_server: Callable[..., ServerProcess], curve_dir: Path
) -> ServerProcess:
    return spawn_server("--curve-dir", str(curve_dir))


@pytest.fixture
def relay(secure_server: ServerProcess) -> Iterator[Relay]:
    r = Relay(int(secure_server.endpoint.rpartition(":")[2]))
    yield r
    r.close()


def test_allowed_key_is_answered_and_nothing_is_plaintext(
    curve_dir: Path, secure_server: ServerProcess, relay: Relay
) -> None:
    server_key = transport.load_public_key(curve_dir / "server.key")
    client = transport.load_keypair(curve_dir / "clients" / "good.key_secret")
    with transport.connect(
        f"tcp://127.0.0.1:{relay.port}", timeout=10, keypair=client, server_key=server_key
    ) as conn:
        assert conn.proxy("echo").echo(MARKER).get() == MARKER
        assert conn.proxy("echo").echo(MARKER.encode()).get() == MARKER.encode()
    assert len(relay.captured) > 100
    assert MARKER.encode() not in relay.captured
    assert b"echo" not in relay.captured


def test_unknown_key_gets_no_answer(curve_dir: Path, secure_server: ServerProcess) -> None:
    server_key = transport.load_public_key(curve_dir / "server.key")
    stranger = transport.generate_keypair()
    with transport.connect(
        secure_server.endpoint, timeout=1.0, keypair=stranger, server_key=server_key
    ) as conn, pytest.raises(transport.MessagingTimeout):
        conn.proxy("echo").add(1, 2).get()


def test_plaintext_client_gets_no_answer(secure_server: ServerProcess) -> None:
    with transport.connect(secure_server.endpoint, timeout=1.0) as conn, pytest.raises(
        transport.MessagingTimeout
    ):
        conn.proxy("echo").add(1, 2).get()


def test_plaintext_bridge_control_shows_the_relay_sees_payloads(
    spawn_server: Callable[..., ServerProcess],
) -> None:
    server = spawn_server()
    r = Relay(int(server.endpoint.rpartition(":")[2]))
    try:
        with transport.connect(f"tcp://127.0.0.1:{r.port}", timeout=10) as conn:
            assert conn.proxy("echo").echo(MARKER).get() == MARKER
    finally:
        r.close()
    assert MARKER.encode() in r.captured


def test_explicit_key_list_in_process() -> None:
    server, good, bad = (transport.generate_keypair() for _ in range(3))
    ref = Echo.start()
    bridge = transport.Bridge("tcp://127.0.0.1:*", keypair=server, allowed_clients=[good.public])
    bridge.expose("echo", ref)
    with bridge:
        with transport.connect(
            bridge.endpoint, timeout=10, keypair=good, server_key=server.public
        ) as conn:
            assert conn.proxy("echo").add(1, 2).get() == 3
        with transport.connect(
            bridge.endpoint, timeout=1.0, keypair=bad, server_key=server.public
        ) as conn, pytest.raises(transport.MessagingTimeout):
            conn.proxy("echo").add(1, 2).get()


def test_keypair_files_round_trip(tmp_path: Path) -> None:
    public_file, secret_file = transport.write_keypair(tmp_path, "node")
    pair = transport.load_keypair(secret_file)
    assert transport.load_public_key(public_file) == pair.public
    assert len(pair.public) == len(pair.secret) == 40
    assert "secret" not in repr(pair) or "hidden" in repr(pair)
    with pytest.raises(ValueError, match="no secret"):
        transport.load_keypair(public_file)


def test_client_needs_both_keys() -> None:
    with pytest.raises(ValueError, match="both"):
        transport.connect("tcp://127.0.0.1:1", keypair=transport.generate_keypair())
